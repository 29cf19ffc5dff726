using System.Collections.Concurrent;
using System.Diagnostics;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// What the workers of one stress run share: the connection, the counters of the report, and the
/// cookie-checked heap operations (allocate and stamp, check and free) that every workload is built
/// from. Failures are sorted as the report needs them:
/// <list type="bullet">
/// <item>a wrong cookie byte is a cookie failure;</item>
/// <item>"node gone" (the owner died, its slot or generation is no longer live), or a call that fails
///   while its node is being declared dead, loses the objects concerned: they are counted as lost;</item>
/// <item>out of memory is expected in grow-shrink (the caller says so) and an error elsewhere;</item>
/// <item>anything else is an error, kept with its message.</item>
/// </list>
/// </summary>
/// <remarks>Concurrency model: counters move with Interlocked; the node table is replaced whole (volatile).</remarks>
public sealed class StressContext
{
    private const int MaxErrorSamples = 20;
    /// <summary>How long a call that fails with a transport error is retried while its node is still listed as live.</summary>
    private static readonly TimeSpan SuspectWindow = TimeSpan.FromSeconds(45);

    private readonly ConcurrentQueue<string> _errorSamples = new();
    private readonly ConcurrentDictionary<string, bool> _gone = new();
    private volatile NodeInfo[] _nodes = [];
    private long _ops, _mallocs, _frees, _cookieChecks, _cookieFailures, _lost, _errors, _ooms;
    /// <summary>The last sequence number handed out; starts at a random point so no two runs share cookies.</summary>
    private long _seq = Random.Shared.NextInt64();
    private long _opsBase, _interrupted;

    public StressContext(ClusterConnection connection, StressOptions options)
    {
        Connection = connection;
        Options = options;
    }

    public ClusterConnection Connection { get; }
    public StressOptions Options { get; }
    public Stopwatch Clock { get; } = new();
    public CancellationTokenSource Stop { get; } = new();

    /// <summary>mcache grains per node that workers spread over: the smallest P of the live nodes (NodeInfo.Procs).</summary>
    public int Procs { get; private set; } = 1;

    public NodeInfo[] Nodes => _nodes;
    public long Ops => Interlocked.Read(ref _ops);
    public long Mallocs => Interlocked.Read(ref _mallocs);
    public long Frees => Interlocked.Read(ref _frees);
    public long CookieChecks => Interlocked.Read(ref _cookieChecks);
    public long CookieFailures => Interlocked.Read(ref _cookieFailures);
    public long Lost => Interlocked.Read(ref _lost);
    public long Errors => Interlocked.Read(ref _errors);
    public long OutOfMemory => Interlocked.Read(ref _ooms);
    /// <summary>Objects on live nodes whose free call was cut off by a dying silo (a gateway): freed or not, nobody knows.</summary>
    public long Interrupted => Interlocked.Read(ref _interrupted);
    public IReadOnlyCollection<string> ErrorSamples => _errorSamples;
    public IReadOnlyCollection<string> GoneNodes => [.. _gone.Keys.Order()];

    /// <summary>True once the run should wind down: time is up, the op count is reached, or a worker asked.</summary>
    public bool Stopping =>
        Stop.IsCancellationRequested || (Options.Ops > 0 ? TimedOps >= Options.Ops : Clock.Elapsed >= Options.Duration);

    /// <summary>Operations since <see cref="BeginTimed"/> (the untimed fill does not count).</summary>
    public long TimedOps => Ops - Interlocked.Read(ref _opsBase);

    /// <summary>Progress 0..1 by time or by op count.</summary>
    public double Fraction => Options.Ops > 0 ? Math.Min(1, (double)TimedOps / Options.Ops) : Math.Min(1, Clock.Elapsed / Options.Duration);

    /// <summary>Starts the timed phase: the clock runs and operations count from here.</summary>
    public void BeginTimed()
    {
        Interlocked.Exchange(ref _opsBase, Ops);
        Clock.Restart();
    }

    public async Task StartAsync()
    {
        _nodes = await Connection.NodesAsync();
        if (_nodes.Length == 0) throw new InvalidOperationException("the cluster has no live node");
        Procs = Math.Max(1, _nodes.Min(n => n.Procs)); // every node has at least this many mcache grains
    }

    /// <summary>Reserves <paramref name="count"/> consecutive sequence numbers (cookies); returns the first.</summary>
    public ulong NextSeqs(int count) => (ulong)Interlocked.Add(ref _seq, count) - (ulong)count + 1;

    public void CountOps(long n)
    {
        long total = Interlocked.Add(ref _ops, n);
        if (_watch is { } w && total - Interlocked.Read(ref _opsBase) >= w.Ops) w.Reached.TrySetResult();
    }

    private (long Ops, TaskCompletionSource Reached)? _watch;

    /// <summary>Completes once the timed phase has done <paramref name="ops"/> operations (tests act mid-run on it).</summary>
    public Task WhenTimedOpsReach(long ops)
    {
        (long ops, TaskCompletionSource) watch = (ops, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _watch = watch;
        return watch.Item2.Task;
    }

    public void Error(string message)
    {
        Interlocked.Increment(ref _errors);
        if (_errorSamples.Count < MaxErrorSamples) _errorSamples.Enqueue(message);
    }

    private void LoseObjects(long n) => Interlocked.Add(ref _lost, n);

    /// <summary>The mcache a worker allocates through: node (worker + shift) mod live nodes, P spread by worker.</summary>
    public (string Node, IMCacheGrain MCache) MCacheFor(int worker, int shift = 0)
    {
        NodeInfo[] nodes = _nodes;
        NodeInfo n = nodes[(int)((uint)(worker + shift) % (uint)nodes.Length)];
        return (n.Name, MCacheOf(n.Name, ProcOf(worker)));
    }

    /// <summary>The P a worker uses on every node: workers spread over nodes first, then over Ps.</summary>
    private int ProcOf(int worker) => worker / Math.Max(1, _nodes.Length) % Procs;

    /// <summary>mcache grain <paramref name="node"/>/<paramref name="p"/>; one reference per key for the run (making one resolves the interface type by reflection).</summary>
    private IMCacheGrain MCacheOf(string node, int p) => _mcaches.GetOrAdd((node, p), k => Connection.MCache(k.Node, k.P));

    private readonly ConcurrentDictionary<(string Node, int P), IMCacheGrain> _mcaches = new();

    /// <summary>Refreshes the live node table; true when <paramref name="node"/> is no longer in it (it died).</summary>
    public async Task<bool> IsGoneAsync(string node)
    {
        if (_gone.ContainsKey(node)) return true;
        try
        {
            NodeInfo[] nodes = await Connection.NodesAsync();
            if (nodes.Length > 0) _nodes = nodes;
        }
        catch (Exception e) when (IsTransient(e))
        {
            return false; // the central heap is moving: no verdict yet
        }
        if (_nodes.Any(n => n.Name == node)) return false;
        _gone[node] = true;
        return true;
    }

    public static bool IsTransient(Exception e) =>
        e is OrleansException or TimeoutException or OperationCanceledException or IOException or ObjectDisposedException
        || (e is ClusterHeapException c && c.Error.Kind == HeapErrorKind.NodeGone);

    /// <summary>
    /// Allocates one object per size through <paramref name="worker"/>'s mcache (moving to another node
    /// when its node dies); the call carries each object's cookie as its ends, so the objects come back
    /// stamped. Returns them and whether the cluster answered out of memory (then fewer objects came back).
    /// </summary>
    public async Task<(List<Obj> Objects, bool OutOfMemory)> MallocAsync(int worker, int shift, long[] sizes, ObjectKind kind, bool oomExpected = false)
    {
        var result = new List<Obj>(sizes.Length);
        int from = 0;
        var deadline = Stopwatch.StartNew();
        while (from < sizes.Length)
        {
            (string node, IMCacheGrain mcache) = MCacheFor(worker, shift);
            int count = sizes.Length - from;
            ulong firstSeq = NextSeqs(count);
            byte[] ends = new byte[count * ObjectEnds.Size];
            for (int i = 0; i < count; i++) Cookie.Ends(new Obj(default, (int)sizes[from + i], firstSeq + (ulong)i), ends.AsSpan(i * ObjectEnds.Size));
            MallocBatchResult reply;
            try
            {
                reply = await mcache.MallocStampedAsync(new StampedMallocRequest(sizes.AsSpan(from), ends, kind));
            }
            catch (Exception e) when (IsTransient(e))
            {
                if (await IsGoneAsync(node) || await RetryAsync(deadline, $"malloc on {node}", e)) continue;
                break;
            }
            HeapPointer[] pointers = reply.Pointers;
            Interlocked.Add(ref _mallocs, pointers.Length);
            CountOps(pointers.Length);
            for (int i = 0; i < pointers.Length; i++) result.Add(new Obj(pointers[i], (int)sizes[from + i], firstSeq + (ulong)i));
            from += pointers.Length;
            if (reply.Error is null) break;
            if (reply.Error.Kind == HeapErrorKind.OutOfMemory)
            {
                Interlocked.Increment(ref _ooms);
                if (!oomExpected) Error($"malloc on {node}: {reply.Error.Message}");
                else if (!reply.Error.Message.Contains("out of memory", StringComparison.Ordinal)) Error($"out of memory without a clear message: {reply.Error.Message}");
                return (result, true);
            }
            if (reply.Error.Kind == HeapErrorKind.NodeGone && await IsGoneAsync(node)) continue;
            if (reply.Error.Kind == HeapErrorKind.Unavailable && await RetryAsync(deadline, $"malloc on {node}", reply.Error.Message)) continue;
            if (reply.Error.Kind == HeapErrorKind.Unavailable) break; // RetryAsync reported it
            Error($"malloc on {node}: {reply.Error.Message}");
            break;
        }
        return (result, false);
    }

    /// <summary>
    /// Checks every object's cookie and frees it: one call per owner (the read that frees, which reads the
    /// object's ends and frees it only when the read succeeded), made to the owner's mcache grain of the P
    /// <paramref name="worker"/> allocates through, so the freed slots go onto that P's free stacks and its
    /// next mallocs reuse them without a lock (the owner's free path). The call is not retried after a transport
    /// failure, since the frees may have happened before the reply was lost and the addresses may already
    /// hold another worker's objects. Such objects are counted as interrupted (their fate is unknown) unless
    /// their node turns out to be gone.
    /// </summary>
    public async Task FreeAsync(IReadOnlyList<Obj> objects, int worker = 0)
    {
        if (objects.Count == 0) return;
        await ForEachOwnerAsync(objects, idempotent: false, async (node, group) =>
        {
            IMCacheGrain owner = MCacheOf(node.GetPrimaryKeyString(), ProcOf(worker));
            var pointers = new HeapPointer[group.Count];
            long[] sizes = new long[group.Count];
            for (int i = 0; i < group.Count; i++) (pointers[i], sizes[i]) = (group[i].Pointer, group[i].Size);
            EndsFreeResult reply = await owner.ReadEndsAndFreeAsync(new EndsFreeRequest(pointers, sizes));
            long freed = 0;
            for (int i = 0; i < group.Count; i++)
            {
                Obj o = group[i];
                if (reply.ErrorOf(i) is { } error)
                {
                    if (error.Kind == HeapErrorKind.NodeGone) LoseObjects(1);
                    else Error($"cookie read and free: {error.Message}");
                    continue;
                }
                freed++;
                Interlocked.Increment(ref _cookieChecks);
                if (!Cookie.Matches(o, reply.EndsOf(i)))
                {
                    Interlocked.Increment(ref _cookieFailures);
                    if (_errorSamples.Count < MaxErrorSamples) _errorSamples.Enqueue($"cookie failure: object {o.Pointer} ({o.Size} B, seq {o.Seq})");
                }
            }
            Interlocked.Add(ref _frees, freed);
            CountOps(freed);
        });
    }

    /// <summary>
    /// Groups <paramref name="objects"/> by owner node and runs <paramref name="body"/> once per owner, in
    /// parallel. Objects whose owner is gone are lost. After a transport failure (a silo died: the owner,
    /// or the gateway that was forwarding the call) the owner is checked: once membership declares it dead
    /// its objects are lost; while it answers, an <paramref name="idempotent"/> body is run again, and a
    /// body that is not leaves its objects interrupted.
    /// </summary>
    private async Task ForEachOwnerAsync(IReadOnlyList<Obj> objects, bool idempotent, Func<IHeapNodeGrain, List<Obj>, Task> body)
    {
        var groups = new Dictionary<IHeapNodeGrain, List<Obj>>();
        foreach (Obj o in objects)
        {
            (IHeapNodeGrain? node, HeapError? _) = await Connection.Router.TryResolveAsync(o.Pointer);
            if (node is null)
            {
                LoseObjects(1);
                continue;
            }
            if (!groups.TryGetValue(node, out List<Obj>? list)) groups[node] = list = [];
            list.Add(o);
        }
        await Task.WhenAll(groups.Select(async g =>
        {
            string name = g.Key.GetPrimaryKeyString();
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    await body(g.Key, g.Value);
                    return;
                }
                catch (Exception e) when (IsTransient(e))
                {
                    switch (await VerdictAsync(g.Key, name, deadline))
                    {
                        case Verdict.Gone:
                            LoseObjects(g.Value.Count);
                            return;
                        case Verdict.Alive when idempotent:
                            continue;
                        case Verdict.Alive:
                            Interlocked.Add(ref _interrupted, g.Value.Count);
                            return;
                        default:
                            Error($"call to {name}: {e.GetType().Name}: {e.Message} (and the node neither answers nor is declared dead after {SuspectWindow.TotalSeconds:0} s)");
                            return;
                    }
                }
            }
        }));
    }

    private enum Verdict { Gone, Alive, Unknown }

    /// <summary>Waits until <paramref name="node"/> is declared dead or answers a ping again (bounded by the suspect window).</summary>
    private async Task<Verdict> VerdictAsync(IHeapNodeGrain node, string name, Stopwatch since)
    {
        while (since.Elapsed < SuspectWindow)
        {
            if (await IsGoneAsync(name)) return Verdict.Gone;
            try
            {
                await node.PingAsync().WaitAsync(TimeSpan.FromSeconds(2));
                // It answers; but a dying silo may still answer for a moment, so ask membership once more.
                return await IsGoneAsync(name) ? Verdict.Gone : Verdict.Alive;
            }
            catch (Exception e) when (IsTransient(e))
            {
                await Task.Delay(200);
            }
        }
        return Verdict.Unknown;
    }

    /// <summary>Waits a little before another attempt; false (and an error) once the suspect window is over.</summary>
    private Task<bool> RetryAsync(Stopwatch since, string what, Exception e) => RetryAsync(since, what, $"{e.GetType().Name}: {e.Message}");

    /// <summary>As above, for a failure that came back as a reply (the central heap unavailable).</summary>
    private async Task<bool> RetryAsync(Stopwatch since, string what, string failure)
    {
        if (since.Elapsed > SuspectWindow)
        {
            Error($"{what}: {failure}");
            return false;
        }
        await Task.Delay(200);
        return true;
    }
}
