using System.Collections.Concurrent;
using System.Diagnostics;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// What the workers of one stress run share: the connection, the live node table and the mcache each worker
/// uses (this file), the counters of the report (StressContext.Counters.cs), the cookie-checked heap operations
/// every workload is built from (StressContext.Cookies.cs) and the verdicts on failed calls
/// (StressContext.Verdicts.cs). Failures are sorted as the report needs them:
/// <list type="bullet">
/// <item>a wrong cookie byte is a cookie failure;</item>
/// <item>"node gone" (the owner died, its slot or generation is no longer live), or a call that fails
///   while its node is being declared dead, loses the objects concerned: they are counted as lost;</item>
/// <item>out of memory is expected in grow-shrink (the caller says so) and an error elsewhere;</item>
/// <item>anything else is an error, kept with its message.</item>
/// </list>
/// </summary>
/// <remarks>Concurrency model: counters move with Interlocked; the node table is replaced whole (volatile).</remarks>
public sealed partial class StressContext
{
    private volatile NodeInfo[] _nodes = [];
    /// <summary>The last sequence number handed out; starts at a random point so no two runs share cookies.</summary>
    private long _seq = Random.Shared.NextInt64();

    public StressContext(ClusterConnection connection, StressOptions options)
    {
        Connection = connection;
        Options = options;
        _phase = Fill;
    }

    public ClusterConnection Connection { get; }
    public StressOptions Options { get; }
    /// <summary>Runs from the start of the timed phase to the workers' return (the progress lines read it).</summary>
    public Stopwatch Clock { get; } = new();
    public CancellationTokenSource Stop { get; } = new();

    /// <summary>mcache grains per node that workers spread over: the smallest P of the live nodes (NodeInfo.Procs).</summary>
    public int Procs { get; private set; } = 1;

    public NodeInfo[] Nodes => _nodes;

    public async Task StartAsync()
    {
        _nodes = await Connection.NodesAsync();
        if (_nodes.Length == 0) throw new InvalidOperationException("the cluster has no live node");
        Procs = Math.Max(1, _nodes.Min(n => n.Procs)); // every node has at least this many mcache grains
    }

    /// <summary>Reserves <paramref name="count"/> consecutive sequence numbers (cookies); returns the first.</summary>
    public ulong NextSeqs(int count) => (ulong)Interlocked.Add(ref _seq, count) - (ulong)count + 1;


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
}
