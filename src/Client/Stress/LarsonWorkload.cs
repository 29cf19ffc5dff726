using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// larson (bench/WORKLOADS.md): W workers each own S slots (default 5000) of sizes uniform in [8, 1000]; a step
/// frees a random slot and allocates a new object there; every <c>--handoff</c> steps (500 000) a worker
/// hands its slots to a new worker on the next node's mcache, so frees hit objects allocated elsewhere.
/// With <c>--batch B</c> a step does B slots at once: one read-that-frees call per owner of the old
/// objects and, at the same time, one malloc that carries the new objects' cookies. With
/// <c>--in-flight R</c> a worker keeps R such rounds going at once, over disjoint slots (slot i belongs to
/// round lane i mod R), so its calls overlap the way a pipelined connection's requests do.
/// </summary>
public sealed class LarsonWorkload(StressContext context) : Workload(context)
{
    private Obj[][] _slots = [];
    private XorShift[] _rng = [];
    private long _handoffs;

    private int SlotCount => Options.Slots > 0 ? Options.Slots : 5000;
    private int Lanes => Math.Clamp(Options.InFlight, 1, SlotCount);

    public override string Shape => $"{SlotCount} slots per worker, sizes {SizeText(8, 1000)}, handoff every {Options.Handoff} steps, {Lanes} round(s) in flight per worker";

    public override IReadOnlyDictionary<string, object> Extra => new Dictionary<string, object> { ["handoffs"] = Interlocked.Read(ref _handoffs) };

    public override async Task SetupAsync(int workers)
    {
        // One generator per lane: lane 0 of worker w draws the stream worker w always drew.
        _rng = [.. Enumerable.Range(0, workers * Lanes).Select(k => XorShift.ForWorker(Options.Seed, k % Lanes == 0 ? k / Lanes : workers + k))];
        _slots = new Obj[workers][];
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async w =>
        {
            Func<long> size = Sizes(_rng, w * Lanes, 8, 1000);
            List<Obj> filled = await FillAsync(w, SlotCount, size);
            _slots[w] = new Obj[SlotCount];
            filled.CopyTo(0, _slots[w], 0, Math.Min(filled.Count, SlotCount));
        }));
    }

    protected override async Task WorkerAsync(int w, Latency latency)
    {
        var lanes = new Latency[Lanes];
        await Task.WhenAll(Enumerable.Range(0, Lanes).Select(lane => LaneAsync(w, lane, lanes[lane] = new Latency())));
        foreach (Latency l in lanes) latency.Merge(l);
    }

    /// <summary>Rounds over the slots of one lane of worker <paramref name="w"/> (slots lane, lane + R, …), one at a time.</summary>
    private async Task LaneAsync(int w, int lane, Latency latency)
    {
        Obj[] slots = _slots[w];
        int k = w * Lanes + lane;
        Func<long> size = Sizes(_rng, k, 8, 1000);
        int own = (slots.Length - lane + Lanes - 1) / Lanes; // slots of this lane
        int batch = Math.Min(Options.Batch, own);
        long steps = 0;
        int shift = 0;
        var picked = new HashSet<int>();
        var old = new List<Obj>(batch);
        while (!Ctx.Stopping)
        {
            picked.Clear();
            for (int tries = 0; picked.Count < batch && tries < batch * 4; tries++) picked.Add(lane + _rng[k].Below(own) * Lanes);
            int[] idx = [.. picked];
            long[] sizes = new long[idx.Length];
            old.Clear();
            for (int j = 0; j < idx.Length; j++)
            {
                sizes[j] = size();
                if (!slots[idx[j]].Pointer.IsNull) old.Add(slots[idx[j]]);
            }
            long start = Stopwatch.GetTimestamp();
            Task freeing = Ctx.FreeAsync(old, w);
            (List<Obj> fresh, bool _) = await Ctx.MallocAsync(w, shift, sizes, ObjectKind.Noscan);
            await freeing;
            latency.Record(start);
            for (int j = 0; j < idx.Length; j++) slots[idx[j]] = j < fresh.Count ? fresh[j] : default;
            long before = steps;
            steps += idx.Length;
            if (steps / Options.Handoff != before / Options.Handoff)
            {
                shift++;
                Interlocked.Increment(ref _handoffs);
            }
        }
    }

    public override async Task TeardownAsync() => await FreeAllAsync(_slots.SelectMany(s => s));
}
