using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// larson (bench/WORKLOADS.md): W workers each own S slots (default 5000) of sizes uniform in [8, 1000]; a step
/// frees a random slot and allocates a new object there; every <c>--handoff</c> steps (500 000) a worker
/// hands its slots to a new worker on the next node's mcache, so frees hit objects allocated elsewhere.
/// With <c>--batch B</c> a step does B slots at once (one read, one free, one malloc and one write call per owner).
/// </summary>
public sealed class LarsonWorkload(StressContext context) : Workload(context)
{
    private Obj[][] _slots = [];
    private XorShift[] _rng = [];
    private long _handoffs;

    private int SlotCount => Options.Slots > 0 ? Options.Slots : 5000;

    public override string Shape => $"{SlotCount} slots per worker, sizes {SizeText(8, 1000)}, handoff every {Options.Handoff} steps";

    public override IReadOnlyDictionary<string, object> Extra => new Dictionary<string, object> { ["handoffs"] = Interlocked.Read(ref _handoffs) };

    public override async Task SetupAsync(int workers)
    {
        _rng = [.. Enumerable.Range(0, workers).Select(w => XorShift.ForWorker(Options.Seed, w))];
        _slots = new Obj[workers][];
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async w =>
        {
            Func<long> size = Sizes(_rng, w, 8, 1000);
            List<Obj> filled = await FillAsync(w, SlotCount, size);
            _slots[w] = new Obj[SlotCount];
            filled.CopyTo(0, _slots[w], 0, Math.Min(filled.Count, SlotCount));
        }));
    }

    protected override async Task WorkerAsync(int w, Latency latency)
    {
        Obj[] slots = _slots[w];
        Func<long> size = Sizes(_rng, w, 8, 1000);
        int batch = Math.Min(Options.Batch, slots.Length);
        long steps = 0;
        int shift = 0;
        var picked = new HashSet<int>();
        while (!Ctx.Stopping)
        {
            picked.Clear();
            for (int tries = 0; picked.Count < batch && tries < batch * 4; tries++) picked.Add(_rng[w].Below(slots.Length));
            int[] idx = [.. picked];
            long[] sizes = [.. idx.Select(_ => size())];
            long start = Stopwatch.GetTimestamp();
            await Ctx.FreeAsync([.. idx.Select(i => slots[i]).Where(o => !o.Pointer.IsNull)]);
            (List<Obj> fresh, bool _) = await Ctx.MallocAsync(w, shift, sizes, ObjectKind.Scalar);
            latency.Record(start);
            for (int k = 0; k < idx.Length; k++) slots[idx[k]] = k < fresh.Count ? fresh[k] : default;
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
