using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// mstress (bench/WORKLOADS.md, after mimalloc's test-stress): each step allocates a power-of-two size from 8 to
/// 512 B (1 % of objects ×100, one in a thousand ×1000: large); two-thirds of steps free a random live
/// object and a quarter swap a live object with a slot of an array shared by all workers, so objects
/// change hands between workers and are freed by one that did not allocate them. A worker keeps at most
/// <c>--slots</c> objects (default 5000). <c>--batch B</c> does B steps per round of calls.
/// </summary>
public sealed class MstressWorkload(StressContext context) : Workload(context)
{
    private const int Transfers = 1000;
    private readonly Obj[] _transfer = new Obj[Transfers];
    private readonly Lock _transferLock = new();
    private List<Obj>[] _live = [];
    private XorShift[] _rng = [];
    private long _swaps, _large;

    private int Cap => Options.Slots > 0 ? Options.Slots : 5000;

    public override string Shape => $"sizes 8..512 B by powers of two, 1% x100, 0.1% x1000; up to {Cap} live per worker, {Transfers} shared transfer slots";

    public override IReadOnlyDictionary<string, object> Extra => new Dictionary<string, object>
    {
        ["swaps"] = Interlocked.Read(ref _swaps),
        ["large_objects"] = Interlocked.Read(ref _large),
    };

    public override Task SetupAsync(int workers)
    {
        _rng = [.. Enumerable.Range(0, workers).Select(w => XorShift.ForWorker(Options.Seed, w))];
        _live = [.. Enumerable.Range(0, workers).Select(_ => new List<Obj>())];
        return Task.CompletedTask;
    }

    private long Size(int w)
    {
        if (Options.Size > 0) return Options.Size;
        ref XorShift r = ref _rng[w];
        long size = 8L << r.Below(7);
        if (r.Chance(1))
        {
            size *= 100;
        }
        else if (r.Chance(0.1))
        {
            size *= 1000;
            Interlocked.Increment(ref _large);
        }
        return size;
    }

    protected override async Task WorkerAsync(int w, Latency latency)
    {
        List<Obj> live = _live[w];
        int batch = Options.Batch;
        while (!Ctx.Stopping)
        {
            long start = Stopwatch.GetTimestamp();
            long[] sizes = [.. Enumerable.Range(0, batch).Select(_ => Size(w))];
            (List<Obj> fresh, bool _) = await Ctx.MallocAsync(w, 0, sizes, ObjectKind.Noscan);
            live.AddRange(fresh);

            var free = new List<Obj>();
            for (int k = 0; k < batch && live.Count > 0; k++)
            {
                if (_rng[w].Chance(66.67)) free.Add(TakeAt(live, _rng[w].Below(live.Count)));
            }
            while (live.Count > Cap) free.Add(TakeAt(live, _rng[w].Below(live.Count)));
            await Ctx.FreeAsync(free, w);

            for (int k = 0; k < batch && live.Count > 0; k++)
            {
                if (!_rng[w].Chance(25)) continue;
                int i = _rng[w].Below(live.Count), t = _rng[w].Below(Transfers);
                Obj mine = live[i];
                Obj theirs;
                lock (_transferLock)
                {
                    theirs = _transfer[t];
                    _transfer[t] = mine;
                }
                if (theirs.Pointer.IsNull) TakeAt(live, i);
                else live[i] = theirs;
                Interlocked.Increment(ref _swaps);
            }
            latency.Record(start);
        }
    }

    private static Obj TakeAt(List<Obj> list, int i)
    {
        Obj o = list[i];
        list[i] = list[^1];
        list.RemoveAt(list.Count - 1);
        return o;
    }

    public override async Task TeardownAsync()
    {
        Obj[] transfer;
        lock (_transferLock) transfer = [.. _transfer];
        await FreeAllAsync(_live.SelectMany(l => l).Concat(transfer));
    }
}
