using System.Diagnostics;
using System.Globalization;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Bench;

/// <summary>
/// The cost of a call (issue 3, "Performance"): in one run, against one node's mcache grain, a no-op
/// grain call and <c>Malloc(64)</c>, one at a time and with 64 in flight, and <c>MallocBatch</c> of
/// 1024 × 64 B. Each measurement prints <c>NAME rate=&lt;per second&gt; p50us=&lt;µs&gt; p99us=&lt;µs&gt;</c>;
/// for the batch the rate counts objects and the latency is per call. Objects are freed after each
/// measurement (batches right after each call), outside the timed calls. Ctrl+C (<c>stop</c>) ends the
/// current measurement early, frees what it allocated, and skips the rest.
/// </summary>
public static class CallsBench
{
    public sealed record Measurement(string Name, double Rate, double P50Us, double P99Us)
    {
        public string Line() => string.Create(CultureInfo.InvariantCulture, $"{Name} rate={Rate:0} p50us={P50Us:0} p99us={P99Us:0}");
    }

    public static async Task<List<Measurement>> RunAsync(ClusterConnection c, string node, TimeSpan each, TextWriter output, CancellationToken stop = default)
    {
        IMCacheGrain mcache = c.MCache(node);
        var results = new List<Measurement>();
        async Task Report(Func<Task<Measurement>> m)
        {
            if (stop.IsCancellationRequested) return;
            Measurement r = await m();
            results.Add(r);
            output.WriteLine(r.Line());
        }

        // Warm up (activations, connections, JIT, tiered compilation) for half a second of each call, untimed.
        var warm = new List<HeapPointer>();
        var warmup = Stopwatch.StartNew();
        while (warmup.Elapsed < TimeSpan.FromMilliseconds(500) && !stop.IsCancellationRequested)
        {
            await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => mcache.PingAsync()));
            warm.Add(await mcache.MallocAsync(64));
        }
        await Free(c, warm);

        await Report(() => Loop("noop-call", each, 1, mcache.PingAsync, stop));
        await Report(() => Loop("noop-call-64-in-flight", each, 64, mcache.PingAsync, stop));
        var made = new List<HeapPointer>();
        await Report(() => Loop("malloc-64B", each, 1, async () => { HeapPointer p = await mcache.MallocAsync(64); lock (made) made.Add(p); }, stop));
        await Free(c, made);
        await Report(() => Loop("malloc-64B-64-in-flight", each, 64, async () => { HeapPointer p = await mcache.MallocAsync(64); lock (made) made.Add(p); }, stop));
        await Free(c, made);
        await Report(() => BatchAsync(c, mcache, each, stop));
        return results;
    }

    private static async Task Free(ClusterConnection c, List<HeapPointer> made)
    {
        foreach (HeapPointer[] chunk in made.Chunk(4096)) await c.Router.FreeBatchAsync(chunk);
        made.Clear();
    }

    private static async Task<Measurement> Loop(string name, TimeSpan each, int inFlight, Func<Task> call, CancellationToken stop)
    {
        var lat = new Latency[inFlight];
        long calls = 0;
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async k =>
        {
            var l = lat[k] = new Latency();
            while (clock.Elapsed < each && !stop.IsCancellationRequested)
            {
                long start = Stopwatch.GetTimestamp();
                await call();
                l.Record(start);
                Interlocked.Increment(ref calls);
            }
        }));
        double seconds = clock.Elapsed.TotalSeconds;
        var all = new Latency();
        foreach (Latency l in lat) all.Merge(l);
        return new Measurement(name, calls / seconds, all.Percentile(0.5), all.Percentile(0.99));
    }

    private static async Task<Measurement> BatchAsync(ClusterConnection c, IMCacheGrain mcache, TimeSpan each, CancellationToken stop)
    {
        const int count = 1024;
        var lat = new Latency();
        long objects = 0, ticks = 0;
        var wall = Stopwatch.StartNew();
        while (wall.Elapsed < each && !stop.IsCancellationRequested)
        {
            long start = Stopwatch.GetTimestamp();
            MallocBatchResult r = await mcache.MallocBatchAsync(count, 64);
            ticks += Stopwatch.GetTimestamp() - start;
            lat.Record(start);
            if (r.Error is not null) throw r.Error.ToException();
            objects += r.Pointers.Length;
            await c.Router.FreeBatchAsync(r.Pointers);
        }
        double seconds = (double)ticks / Stopwatch.Frequency;
        return new Measurement($"mallocbatch-{count}x64B", objects / seconds, lat.Percentile(0.5), lat.Percentile(0.99));
    }
}
