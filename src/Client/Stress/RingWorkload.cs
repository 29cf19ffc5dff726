using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// ring (bench/WORKLOADS.md) through the mcache grains: each worker keeps <c>--slots</c> live objects (default
/// 1000) and in turn frees the object in slot <c>i % live</c> and allocates a new one there (fixed
/// <c>--size</c>, default 64 B, or uniform <c>--min</c>/<c>--max</c>), <c>batch</c> slots per call.
/// </summary>
public sealed class RingWorkload(StressContext context) : Workload(context)
{
    private Obj[][] _slots = [];
    private XorShift[] _rng = [];

    private int SlotCount => Options.Slots > 0 ? Options.Slots : 1000;

    public override string Shape => $"{SlotCount} slots per worker in turn, sizes {SizeText(64, 64)}";

    public override async Task SetupAsync(int workers)
    {
        _rng = [.. Enumerable.Range(0, workers).Select(w => XorShift.ForWorker(Options.Seed, w))];
        _slots = new Obj[workers][];
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async w =>
        {
            List<Obj> filled = await FillAsync(w, SlotCount, Sizes(_rng, w, 64, 64));
            _slots[w] = new Obj[SlotCount];
            filled.CopyTo(0, _slots[w], 0, Math.Min(filled.Count, SlotCount));
        }));
    }

    protected override async Task WorkerAsync(int w, Latency latency)
    {
        Obj[] slots = _slots[w];
        Func<long> size = Sizes(_rng, w, 64, 64);
        int batch = Math.Min(Options.Batch, slots.Length);
        long i = 0;
        while (!Ctx.Stopping)
        {
            int[] idx = [.. Enumerable.Range(0, batch).Select(k => (int)((i + k) % slots.Length))];
            long[] sizes = [.. idx.Select(_ => size())];
            long start = Stopwatch.GetTimestamp();
            await Ctx.FreeAsync([.. idx.Select(k => slots[k]).Where(o => !o.Pointer.IsNull)], w);
            (List<Obj> fresh, bool _) = await Ctx.MallocAsync(w, 0, sizes, ObjectKind.Noscan);
            latency.Record(start);
            for (int k = 0; k < idx.Length; k++) slots[idx[k]] = k < fresh.Count ? fresh[k] : default;
            i += batch;
        }
    }

    public override async Task TeardownAsync() => await FreeAllAsync(_slots.SelectMany(s => s));
}
