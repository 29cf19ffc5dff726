using System.Diagnostics;
using System.Globalization;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Bench;

/// <summary>
/// The cost of a call (issue 3, "Performance"; issue 10 made it fair): against one node's mcache grain, a
/// no-op grain call and <c>Malloc(64)</c>, one at a time and with 64 in flight, and <c>MallocBatch</c> of
/// 1024 × 64 B. Every kind is warmed up first (activations, connections, JIT tiers: 2 s over all kinds,
/// untimed), then the set runs <c>repeat</c> times, each repetition in a rotated order so that no kind is
/// always first, and the medians over repetitions are returned and printed with their range. Each line reads
/// <c>NAME rate=&lt;per second&gt; p50us=&lt;µs&gt; p99us=&lt;µs&gt;</c> (raw lines carry <c>rep=</c>); for the batch the
/// rate counts objects and the latency is per call. Objects are freed after each measurement (batches right
/// after each call), outside the timed calls. Ctrl+C (<c>stop</c>) ends the current measurement early, frees
/// what it allocated, and skips the rest.
/// </summary>
public static class CallsBench
{
    public sealed record Measurement(string Name, double Rate, double P50Us, double P99Us)
    {
        public string Line() => string.Create(CultureInfo.InvariantCulture, $"{Name} rate={Rate:0} p50us={P50Us:0} p99us={P99Us:0}");
    }

    public static async Task<List<Measurement>> RunAsync(ClusterConnection c, string node, TimeSpan each, TextWriter output, CancellationToken stop = default, int repeat = 3)
    {
        IMCacheGrain mcache = c.MCache(node);
        var made = new List<HeapPointer>();
        async Task Malloc()
        {
            HeapPointer p = await mcache.MallocAsync(64);
            lock (made) made.Add(p);
        }
        Func<TimeSpan, Task<Measurement>>[] kinds =
        [
            t => Loop("noop-call", t, 1, mcache.PingAsync, stop),
            t => Loop("noop-call-64-in-flight", t, 64, mcache.PingAsync, stop),
            async t => { Measurement m = await Loop("malloc-64B", t, 1, Malloc, stop); await Free(c, made); return m; },
            async t => { Measurement m = await Loop("malloc-64B-64-in-flight", t, 64, Malloc, stop); await Free(c, made); return m; },
            t => BatchAsync(c, mcache, t, stop),
        ];

        // Warm-up: every kind for a share of 2 s, untimed and unreported.
        foreach (Func<TimeSpan, Task<Measurement>> kind in kinds)
        {
            if (stop.IsCancellationRequested) break;
            await kind(TimeSpan.FromSeconds(2) / kinds.Length);
        }

        var byName = new Dictionary<string, List<Measurement>>();
        string?[] order = new string?[kinds.Length];
        for (int rep = 0; rep < repeat && !stop.IsCancellationRequested; rep++)
        {
            for (int k = 0; k < kinds.Length && !stop.IsCancellationRequested; k++)
            {
                int i = (k + rep) % kinds.Length; // rotated: each repetition starts with another kind
                Measurement m = await kinds[i](each);
                order[i] = m.Name;
                if (!byName.TryGetValue(m.Name, out List<Measurement>? list)) byName[m.Name] = list = [];
                list.Add(m);
                output.WriteLine($"rep={rep + 1} {m.Line()}");
            }
        }

        var medians = new List<Measurement>();
        output.WriteLine($"# medians of up to {repeat} repetitions (range of the rate)");
        foreach (string? name in order)
        {
            if (name is null) continue;
            List<Measurement> ms = byName[name];
            double Median(Func<Measurement, double> f) => ms.Select(f).Order().ElementAt(ms.Count / 2);
            var m = new Measurement(name, Median(x => x.Rate), Median(x => x.P50Us), Median(x => x.P99Us));
            medians.Add(m);
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{m.Line()} range={ms.Min(x => x.Rate):0}-{ms.Max(x => x.Rate):0}"));
        }
        return medians;
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
            Latency l = lat[k] = new Latency();
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
