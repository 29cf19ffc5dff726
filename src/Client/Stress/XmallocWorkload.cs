using System.Diagnostics;
using System.Threading.Channels;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// xmalloc (bench/WORKLOADS.md): half the workers produce, half consume. A producer allocates batches of
/// objects (64 B, or with <c>--min</c>/<c>--max</c> the mixed list 8, 16, … 2048 within that range)
/// through its node's mcache and stamps them; any consumer checks and frees them at their owner node, so
/// objects are freed by a different worker than the one that made them;
/// a bounded queue of batches (2 per worker) sits between them, so producers wait for slow consumers.
/// </summary>
public sealed class XmallocWorkload(StressContext context) : Workload(context)
{
    private static readonly long[] Mixed = [8, 16, 32, 64, 128, 256, 512, 1024, 2048];
    private Channel<List<Obj>> _queue = Channel.CreateBounded<List<Obj>>(1);
    private XorShift[] _rng = [];
    private int _producers, _running;
    private long _batches;

    public override string Shape =>
        $"sizes {(Options.Min > 0 ? string.Join(",", MixedSizes()) + " B" : SizeText(64, 64))}, {_producers} producers, {_running} consumers, queue of {2 * (_producers + _running)} batches";

    public override IReadOnlyDictionary<string, object> Extra => new Dictionary<string, object> { ["batches_handed_over"] = Interlocked.Read(ref _batches) };

    private long[] MixedSizes() => [.. Mixed.Where(s => s >= Options.Min && s <= Options.Max).DefaultIfEmpty(Options.Min)];

    public override Task SetupAsync(int workers)
    {
        _producers = Math.Max(1, workers / 2);
        _running = Math.Max(1, workers - _producers);
        _queue = Channel.CreateBounded<List<Obj>>(new BoundedChannelOptions(2 * workers) { SingleReader = false, SingleWriter = false });
        _rng = [.. Enumerable.Range(0, _producers + _running).Select(w => XorShift.ForWorker(Options.Seed, w))];
        return Task.CompletedTask;
    }

    public override Task RunAsync(Latency[] latencies)
    {
        int producersLeft = _producers;
        var tasks = new List<Task>();
        for (int p = 0; p < _producers; p++)
        {
            int w = p;
            tasks.Add(Guarded(async () =>
            {
                try
                {
                    await ProduceAsync(w, latencies[w % latencies.Length]);
                }
                finally
                {
                    if (Interlocked.Decrement(ref producersLeft) == 0) _queue.Writer.TryComplete();
                }
            }));
        }
        for (int c = 0; c < _running; c++)
        {
            int w = _producers + c;
            tasks.Add(Guarded(() => ConsumeAsync(latencies[w % latencies.Length])));
        }
        return Task.WhenAll(tasks);
    }

    private async Task ProduceAsync(int w, Latency latency)
    {
        long[] mixed = MixedSizes();
        while (!Ctx.Stopping)
        {
            long[] sizes = Options.Min > 0
                ? [.. Enumerable.Range(0, Options.Batch).Select(_ => mixed[_rng[w].Below(mixed.Length)])]
                : [.. Enumerable.Repeat(Options.Size > 0 ? Options.Size : 64, Options.Batch)];
            long start = Stopwatch.GetTimestamp();
            (List<Obj> made, bool _) = await Ctx.MallocAsync(w, 0, sizes, ObjectKind.Noscan);
            lock (latency) latency.Record(start);
            if (made.Count > 0) await _queue.Writer.WriteAsync(made);
        }
    }

    private async Task ConsumeAsync(Latency latency)
    {
        await foreach (List<Obj> batch in _queue.Reader.ReadAllAsync())
        {
            long start = Stopwatch.GetTimestamp();
            await Ctx.FreeAsync(batch);
            lock (latency) latency.Record(start);
            Interlocked.Increment(ref _batches);
        }
    }
}
