using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// One cluster workload of bench/WORKLOADS.md. <see cref="SetupAsync"/> runs untimed (initial fill),
/// <see cref="RunAsync"/> is the timed phase (by default one <see cref="WorkerAsync"/> per worker until
/// the run is stopping), <see cref="TeardownAsync"/> checks every cookie still live and frees it.
/// </summary>
public abstract class Workload(StressContext context)
{
    protected StressContext Ctx { get; } = context;
    protected StressOptions Options => Ctx.Options;

    /// <summary>One line saying what runs (sizes, slots, shape).</summary>
    public abstract string Shape { get; }

    public static Workload Create(StressContext context) => context.Options.Workload switch
    {
        "larson" => new LarsonWorkload(context),
        "xmalloc" => new XmallocWorkload(context),
        "mstress" => new MstressWorkload(context),
        "ring" => new RingWorkload(context),
        "grow-shrink" => new GrowShrinkWorkload(context),
        "graph" => new GraphWorkload(context),
        _ => throw new ArgumentException($"unknown workload {context.Options.Workload}"),
    };

    public virtual Task SetupAsync(int workers) => Task.CompletedTask;

    public virtual Task RunAsync(Latency[] latencies) =>
        Task.WhenAll(latencies.Select((l, w) => Guarded(() => WorkerAsync(w, l))));

    /// <summary>
    /// Runs <paramref name="body"/> on the thread pool; an exception that escapes it is an unexpected error of
    /// the run (reported and counted), and the other workers carry on.
    /// </summary>
    protected Task Guarded(Func<Task> body) => Task.Run(async () =>
    {
        try
        {
            await body();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            Ctx.Error($"worker stopped: {e.GetType().Name}: {e.Message}");
        }
    });

    protected virtual Task WorkerAsync(int worker, Latency latency) => Task.CompletedTask;

    public virtual Task TeardownAsync() => Task.CompletedTask;

    /// <summary>Extra report lines and JSON fields of this workload.</summary>
    public virtual IReadOnlyDictionary<string, object> Extra => new Dictionary<string, object>();

    /// <summary>Fills <paramref name="count"/> objects for worker <paramref name="worker"/> in calls of up to 512.</summary>
    protected async Task<List<Obj>> FillAsync(int worker, int count, Func<long> size)
    {
        var all = new List<Obj>(count);
        while (all.Count < count && !Ctx.Stop.IsCancellationRequested)
        {
            long[] sizes = [.. Enumerable.Range(0, Math.Min(512, count - all.Count)).Select(_ => size())];
            (List<Obj> got, bool _) = await Ctx.MallocAsync(worker, 0, sizes, ObjectKind.Noscan);
            if (got.Count == 0) break;
            all.AddRange(got);
        }
        return all;
    }

    /// <summary>The size draw of <paramref name="rng"/>: --size, or --min/--max, or the workload's own range.</summary>
    protected Func<long> Sizes(XorShift[] rng, int worker, long min, long max)
    {
        if (Options.Size > 0) return () => Options.Size;
        (long lo, long hi) = Options.Min > 0 ? (Options.Min, Options.Max) : (min, max);
        return () => rng[worker].Between(lo, hi);
    }

    protected string SizeText(long min, long max) =>
        Options.Size > 0 ? $"{Options.Size} B" : Options.Min > 0 ? $"{Options.Min}..{Options.Max} B" : $"{min}..{max} B";

    /// <summary>Frees in chunks of the batch size (teardown).</summary>
    protected async Task FreeAllAsync(IEnumerable<Obj> objects)
    {
        foreach (Obj[] chunk in objects.Where(o => !o.Pointer.IsNull).Chunk(Math.Max(256, Options.Batch)))
            await Ctx.FreeAsync(chunk);
    }
}
