using System.Diagnostics;
using ClusterHeap.Client.Cli;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// grow-shrink (bench/WORKLOADS.md): every worker allocates (sizes uniform in 4..64 KiB unless told) until the
/// cluster memory limit answers out of memory, then everything is checked and freed, the nodes scavenge,
/// and the round repeats. Out of memory is expected here and must come as a clean error that names the
/// limit; memory must come back: after the free and a forced scavenge, committed bytes (HeapSys -
/// HeapReleased) must be below what they were when the cluster was full, in every round. The limit (<c>--limit</c>, by
/// default the grants so far + 256 MiB, or the limit already set) is restored at the end.
/// </summary>
public sealed class GrowShrinkWorkload(StressContext context) : Workload(context)
{
    private const long Headroom = 256L << 20;
    private List<Obj>[] _held = [];
    private XorShift[] _rng = [];
    private long _oldLimit = long.MaxValue, _limit, _returned, _peakLive;
    private int _rounds;

    public override string Shape => $"sizes {SizeText(4096, 65536)}, allocate to the limit {ByteSize.Format(_limit)} and free, round after round";

    public override IReadOnlyDictionary<string, object> Extra => new Dictionary<string, object>
    {
        ["rounds"] = _rounds,
        ["limit_bytes"] = _limit,
        ["returned_bytes"] = _returned,
        ["peak_live_bytes"] = _peakLive,
    };

    public override async Task SetupAsync(int workers)
    {
        _rng = [.. Enumerable.Range(0, workers).Select(w => XorShift.ForWorker(Options.Seed, w))];
        _held = [.. Enumerable.Range(0, workers).Select(_ => new List<Obj>())];
        ClusterStats stats = await Ctx.Connection.CentralHeap.GetStatsAsync();
        _oldLimit = stats.MemoryLimit;
        _limit = Options.Limit > 0 ? Options.Limit : _oldLimit != long.MaxValue ? _oldLimit : stats.TotalGranted + Headroom;
        await Ctx.Connection.CentralHeap.SetMemoryLimitAsync(_limit);
    }

    public override async Task RunAsync(Latency[] latencies)
    {
        int workers = latencies.Length;
        while (true)
        {
            // Grow: every worker until out of memory.
            await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Guarded(() => GrowAsync(w, latencies[w]))));
            _peakLive = Math.Max(_peakLive, _held.Sum(h => h.Sum(o => (long)o.Size)));
            long full = await CommittedAsync();
            // Shrink: check and free everything.
            await Task.WhenAll(Enumerable.Range(0, workers).Select(w => Guarded(async () =>
            {
                foreach (Obj[] chunk in _held[w].Chunk(Options.Batch))
                {
                    long start = Stopwatch.GetTimestamp();
                    await Ctx.FreeAsync(chunk);
                    latencies[w].Record(start);
                }
                _held[w].Clear();
            })));
            // Memory returns: scavenge every node and see HeapReleased grow.
            NodeInfo[] nodes = await Ctx.Connection.NodesAsync();
            await Task.WhenAll(nodes.Select(n => Ctx.Connection.Node(n.Name).ScavengeAsync(force: true)));
            long empty = await CommittedAsync();
            _returned += Math.Max(0, full - empty);
            if (empty >= full) Ctx.Error($"round {_rounds + 1}: memory did not return (committed {full} bytes when full, {empty} after freeing everything and scavenging)");
            _rounds++;
            if (Options.Rounds > 0 ? _rounds >= Options.Rounds : Ctx.Stopping) break;
            if (Ctx.OutOfMemory == 0 || Ctx.Errors > 0) break;
        }
    }

    /// <summary>Arena bytes mapped and not released: HeapSys - HeapReleased over the live nodes.</summary>
    private async Task<long> CommittedAsync()
    {
        NodeStats sum = (await Ctx.Connection.CentralHeap.GetStatsAsync()).Sum;
        return sum.HeapSys - sum.HeapReleased;
    }

    private async Task GrowAsync(int w, Latency latency)
    {
        Func<long> size = Sizes(_rng, w, 4096, 65536);
        while (!Ctx.Stop.IsCancellationRequested)
        {
            long[] sizes = [.. Enumerable.Range(0, Options.Batch).Select(_ => size())];
            long start = Stopwatch.GetTimestamp();
            (List<Obj> got, bool oom) = await Ctx.MallocAsync(w, 0, sizes, ObjectKind.Noscan, oomExpected: true);
            latency.Record(start);
            _held[w].AddRange(got);
            if (oom || got.Count == 0) return;
        }
    }

    public override async Task TeardownAsync()
    {
        try
        {
            await FreeAllAsync(_held.SelectMany(h => h));
        }
        finally
        {
            await Ctx.Connection.CentralHeap.SetMemoryLimitAsync(_oldLimit);
        }
    }
}
