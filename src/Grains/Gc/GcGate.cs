namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The door a node's mutators pass through (docs/DESIGN.md §12): every client call that can change the object graph —
/// malloc, free, write, root, release — enters before it runs and exits when it is done (<see cref="GcGateFilter"/>).
/// Stopping the world closes the door and waits until no such call is in flight; calls that arrive meanwhile wait at
/// the door (asynchronously: no thread is held) until the cycle ends and <see cref="Open"/> is called.
/// <para>
/// Concurrency model: lock-free. An entrant increments <c>_inFlight</c> and then reads <c>_closed</c>; the stopper
/// writes <c>_closed</c> and then reads <c>_inFlight</c> (both through interlocked or volatile accesses, so one of the
/// two sees the other): either the entrant backs out, or the stopper waits for it. Invariant: while <c>_closed</c> is
/// set and <c>_inFlight</c> is 0, no gated call runs on this node.
/// </para>
/// </summary>
public sealed class GcGate
{
    private static readonly AsyncLocal<bool> Inside = new();   // true inside a gated malloc (see Park)
    private volatile TaskCompletionSource? _closed;               // set while the world is stopped
    private volatile TaskCompletionSource? _drained;              // completed when _inFlight drops to 0 while closed
    private int _inFlight;
    private long _held;                                           // calls that found the gate closed and waited (slow path only)

    /// <summary>Gated calls running now.</summary>
    public int InFlight => Volatile.Read(ref _inFlight);

    /// <summary>Gated calls that have found the gate closed and waited at it, since the gate was made.</summary>
    public long Held => Interlocked.Read(ref _held);

    /// <summary>Gated calls that were in flight when the gate last closed (the stop waited for them).</summary>
    public int DrainedAtLastClose { get; private set; }

    /// <summary>True while the world is stopped (or stopping).</summary>
    public bool IsClosed => _closed is not null;

    /// <summary>
    /// True when the current async flow is inside a gated malloc (set by the filter for mallocs only, the calls that may
    /// park; it flows into the call).
    /// </summary>
    public static bool InsideGatedCall
    {
        get => Inside.Value;
        internal set => Inside.Value = value;
    }

    /// <summary>Enters the gate, waiting while it is closed. Pair with <see cref="Exit"/>.</summary>
    public ValueTask EnterAsync()
    {
        Interlocked.Increment(ref _inFlight);
        if (_closed is null)
        {
            return ValueTask.CompletedTask;
        }

        Exit();
        Interlocked.Increment(ref _held);
        return new ValueTask(EnterSlowAsync());
    }

    private async Task EnterSlowAsync()
    {
        while (true)
        {
            if (_closed is { } closed)
            {
                await closed.Task;
            }

            Interlocked.Increment(ref _inFlight);
            if (_closed is null)
            {
                return;
            }

            Exit();
        }
    }

    /// <summary>Leaves the gate.</summary>
    public void Exit()
    {
        if (Interlocked.Decrement(ref _inFlight) == 0 && _closed is not null)
        {
            _drained?.TrySetResult();
        }
    }

    /// <summary>
    /// Closes the gate and waits until no gated call is in flight; false when <paramref name="timeout"/> passed first
    /// (the gate stays closed: the caller aborts the cycle, which opens it), or when the gate was opened meanwhile (the
    /// cycle was aborted while this stop waited: a call in flight may be waiting on a dead node, and the abort must not
    /// wait for it).
    /// </summary>
    public async Task<bool> CloseAsync(TimeSpan timeout)
    {
        TaskCompletionSource drained = _drained = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        TaskCompletionSource closed = _closed ??= new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        int inFlight = DrainedAtLastClose = Volatile.Read(ref _inFlight);
        if (inFlight == 0)
        {
            return true;
        }

        try
        {
            await Task.WhenAny(drained.Task, closed.Task).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            // Decided below.
        }

        return !closed.Task.IsCompleted && Volatile.Read(ref _inFlight) == 0;
    }

    /// <summary>Opens the gate: waiting calls go on.</summary>
    public void Open()
    {
        TaskCompletionSource? closed = _closed;
        _closed = null;
        closed?.TrySetResult();
    }

    /// <summary>
    /// Steps a gated call out of the gate while it waits for <paramref name="wait"/> (a cycle it asked for: the cycle
    /// must not wait for the call that waits for it), then back in. Outside a gated call it only awaits.
    /// </summary>
    public async Task<T> ParkAsync<T>(Func<Task<T>> wait)
    {
        if (!InsideGatedCall)
        {
            return await wait();
        }

        Exit();
        try
        {
            return await wait();
        }
        finally
        {
            await EnterAsync();
        }
    }
}
