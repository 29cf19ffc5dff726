namespace ClusterHeap.Client.Stress;

// The run's phases and the clock of the timed one. A run goes fill → timed → wind-down → teardown:
// - fill: the workload's untimed setup (before BeginTimed);
// - timed: from BeginTimed to the first of: the duration is up (a timer ends it on time, so rounds held by a dying
//   silo cannot stretch it), the op count is reached (by the count that reaches it), Stop (Ctrl+C, a test), or the
//   workload returning by itself (grow-shrink's --rounds);
// - wind-down: the workers finish the rounds that were out when the timed phase ended (after a SIGKILL, rounds the
//   dead silo cut off wait for membership to decide); counted apart, never in the rate;
// - teardown: the final cookie check and free of everything still held, and the verifier.
// The report's ops, mallocs, frees and rate are the timed phase's own; its duration is the timed phase's, from its
// clock; the wind-down is reported beside it.
// Concurrency model: the phase is one volatile reference read once per count; the ends are taken under _phaseLock
// (the timer, a Stop callback and the runner may race to end the timed phase).
public sealed partial class StressContext
{
    private readonly Lock _phaseLock = new();
    private volatile PhaseTally _phase;
    private volatile bool _timedOver;
    private Timer? _timeUp;
    private CancellationTokenRegistration _onStop;
    private readonly TaskCompletionSource _timedEnded = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Counts of the untimed fill (the workload's setup).</summary>
    public PhaseTally Fill { get; } = new();

    /// <summary>Counts of the timed phase: the report's ops, mallocs and frees.</summary>
    public PhaseTally Timed { get; } = new();

    /// <summary>Counts of the rounds that finished after the timed phase ended.</summary>
    public PhaseTally WindDown { get; } = new();

    /// <summary>Counts of the final check and free.</summary>
    public PhaseTally Teardown { get; } = new();

    /// <summary>The timed phase's length, taken when it ended (zero until then). Guarded by <c>_phaseLock</c> when set.</summary>
    public TimeSpan TimedDuration { get; private set; }

    /// <summary>From the end of the timed phase to the workers' return (zero until then).</summary>
    public TimeSpan WindDownDuration { get; private set; }

    /// <summary>Completes when the timed phase ends (tests wait on it).</summary>
    public Task TimedEnded => _timedEnded.Task;

    /// <summary>True once the timed phase is over: workers finish the round they are in and return.</summary>
    public bool Stopping => _timedOver || Stop.IsCancellationRequested;

    /// <summary>Operations of the timed phase (the untimed fill does not count, nor the wind-down).</summary>
    public long TimedOps => Timed.Ops;

    /// <summary>Progress 0..1 by time or by op count.</summary>
    public double Fraction => Options.Ops > 0 ? Math.Min(1, (double)TimedOps / Options.Ops) : Math.Min(1, Clock.Elapsed / Options.Duration);

    /// <summary>Starts the timed phase: the clock runs, counts go to <see cref="Timed"/>, and its end is armed.</summary>
    public void BeginTimed()
    {
        lock (_phaseLock)
        {
            _phase = Timed;
            Clock.Restart();
            if (Options.Ops <= 0) _timeUp = new Timer(_ => TimeUp(), null, Options.Duration, Timeout.InfiniteTimeSpan);
        }
        _onStop = Stop.Token.Register(EndTimed); // runs at once when Stop was already asked for
    }

    /// <summary>
    /// The timer's callback: a timer may fire a little before its due time (a few ms was seen in CI), so the phase ends
    /// only once its clock has run the whole duration; before that, the timer is re-armed for what is left.
    /// </summary>
    private void TimeUp()
    {
        TimeSpan left = Options.Duration - Clock.Elapsed;
        if (left > TimeSpan.Zero)
        {
            _timeUp?.Change(TimeSpan.FromMilliseconds(Math.Ceiling(left.TotalMilliseconds)), Timeout.InfiniteTimeSpan);
            return;
        }

        EndTimed();
    }

    /// <summary>Ends the timed phase now (once; later calls do nothing): its duration is taken and counts go to <see cref="WindDown"/>.</summary>
    public void EndTimed()
    {
        lock (_phaseLock)
        {
            if (_timedOver || _phase != Timed) return;
            TimedDuration = Clock.Elapsed;
            _phase = WindDown;
            _timedOver = true;
        }
        _timedEnded.TrySetResult();
    }

    /// <summary>The workers have returned: ends the timed phase if it had not ended, then the wind-down; the clock stops.</summary>
    public void EndWindDown()
    {
        EndTimed();
        lock (_phaseLock)
        {
            WindDownDuration = Clock.Elapsed - TimedDuration;
            _phase = Teardown;
            Clock.Stop();
        }
        _onStop.Dispose();
        _timeUp?.Dispose();
    }

    /// <summary>Counts into the current phase; the count that reaches --ops ends the timed phase.</summary>
    private void Count(long ops, long mallocs, long frees)
    {
        PhaseTally phase = _phase;
        long total = phase.Add(ops, mallocs, frees);
        if (!ReferenceEquals(phase, Timed)) return;
        if (Options.Ops > 0 && total >= Options.Ops) EndTimed();
        if (_watch is { } w && total >= w.Ops) w.Reached.TrySetResult();
    }
}
