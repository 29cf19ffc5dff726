using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// Runs one workload: start (nodes, P), untimed fill, the timed phase with progress and a committed-bytes
/// sampler, the end figures (refills and leases as deltas per node, live/committed), the final cookie
/// check and free of everything still live, and the verifier. Ctrl+C (<c>interrupt</c>) only ends the fill
/// or the timed phase early: the final check and free of every object still held, the figures and the
/// verifier still run, and the report says the run was interrupted.
/// </summary>
public static class StressRunner
{
    /// <param name="started">Called with the run's context when the timed phase begins (tests hook mid-run actions here).</param>
    /// <param name="interrupt">Stops the workers as the end of the timed phase would; cleanup is never cut short.</param>
    public static async Task<StressReport> RunAsync(ClusterConnection connection, StressOptions options, TextWriter output, bool terminal,
        Action<StressContext>? started = null, CancellationToken interrupt = default)
    {
        var ctx = new StressContext(connection, options);
        using CancellationTokenRegistration stopOnInterrupt = interrupt.Register(ctx.Stop.Cancel);
        await ctx.StartAsync();
        using var unwatch = new CancellationTokenSource();
        Task watcher = ctx.WatchMembershipAsync(unwatch.Token);
        try
        {
            return await RunStartedAsync(ctx, connection, options, output, terminal, started, interrupt);
        }
        finally
        {
            await unwatch.CancelAsync();
            await watcher;
        }
    }

    /// <summary>The run once the context knows the nodes and watches membership.</summary>
    private static async Task<StressReport> RunStartedAsync(StressContext ctx, ClusterConnection connection, StressOptions options,
        TextWriter output, bool terminal, Action<StressContext>? started, CancellationToken interrupt)
    {
        int workers = options.Workers > 0 ? options.Workers : 2 * ctx.Nodes.Length;
        int nodes = ctx.Nodes.Length;
        var workload = Workload.Create(ctx);
        await workload.SetupAsync(workers);

        NodeStats[] before = (await StatsAsync(connection))?.Nodes ?? [];
        Latency[] latencies = Enumerable.Range(0, workers).Select(_ => new Latency()).ToArray();
        long mallocsBase = ctx.Mallocs, freesBase = ctx.Frees;
        using var done = new CancellationTokenSource();
        long peak = 0;
        ctx.BeginTimed();
        started?.Invoke(ctx);
        Task sampler = SampleAsync(connection, v => peak = Math.Max(peak, v), done.Token);
        Task progress = options.Progress == false ? Task.CompletedTask : new Progress(ctx, output, terminal).RunAsync(done.Token);
        try
        {
            await workload.RunAsync(latencies);
        }
        finally
        {
            ctx.Clock.Stop();
            await done.CancelAsync();
            await Task.WhenAll(sampler, progress);
        }
        long ops = ctx.TimedOps, mallocs = ctx.Mallocs - mallocsBase, frees = ctx.Frees - freesBase;

        ClusterStats? after = await StatsAsync(connection);
        NodeStats[] end = after?.Nodes ?? [];
        long Delta(Func<NodeStats, long> f) => end.Sum(n =>
            f(n) - (before.FirstOrDefault(b => b.Node == n.Node && b.Generation == n.Generation) is { } b0 ? f(b0) : 0));
        long refills = Delta(n => n.Refills), leases = Delta(n => n.LeasesTaken), centralCalls = Delta(n => n.CentralCalls);
        var endSum = NodeStats.Sum(end);
        peak = Math.Max(peak, endSum.HeapSys - endSum.HeapReleased);

        await workload.TeardownAsync();
        string verify = await VerifyAsync(connection);

        var all = new Latency();
        foreach (Latency l in latencies) all.Merge(l);
        return new StressReport
        {
            Workload = options.Workload,
            Shape = workload.Shape,
            Cluster = connection.Description,
            Workers = workers,
            Batch = options.Batch,
            Nodes = nodes,
            Seconds = ctx.Clock.Elapsed.TotalSeconds,
            Ops = ops,
            Mallocs = mallocs,
            Frees = frees,
            P50Us = all.Percentile(0.50),
            P99Us = all.Percentile(0.99),
            P999Us = all.Percentile(0.999),
            LatencySamples = all.Count,
            Refills = refills,
            Leases = leases,
            CentralCalls = centralCalls,
            PeakCommittedBytes = peak,
            Utilization = endSum.Utilization,
            CookieChecks = ctx.CookieChecks,
            CookieFailures = ctx.CookieFailures,
            LostObjects = ctx.Lost,
            NodesGone = [.. ctx.GoneNodes],
            UnsettledObjects = ctx.Unsettled,
            OutOfMemory = ctx.OutOfMemory,
            Errors = ctx.Errors,
            ErrorMessages = [.. ctx.ErrorSamples],
            Verify = verify,
            Extra = workload.Extra,
            Interrupted = interrupt.IsCancellationRequested,
        };
    }

    /// <summary>Cluster stats, or null while the central heap is unreachable (it may be moving after a node died).</summary>
    private static async Task<ClusterStats?> StatsAsync(ClusterConnection connection)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            try
            {
                return await connection.CentralHeap.GetStatsAsync();
            }
            catch (Exception e) when (StressContext.IsTransient(e))
            {
                await Task.Delay(250);
            }
        }
        return null;
    }

    private static async Task SampleAsync(ClusterConnection connection, Action<long> committed, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    ClusterStats s = await connection.CentralHeap.GetStatsAsync();
                    committed(s.Nodes.Sum(n => n.HeapSys - n.HeapReleased));
                }
                catch (Exception e) when (StressContext.IsTransient(e))
                {
                    // A node is dying: skip this sample.
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The timed phase is over.
        }
    }

    private static async Task<string> VerifyAsync(ClusterConnection connection)
    {
        try
        {
            VerifyResult[] results = await connection.CentralHeap.VerifyAsync();
            VerifyResult[] bad = [.. results.Where(r => !r.Ok)];
            return bad.Length == 0 ? $"ok ({results.Length} checks)" : "FAIL " + string.Join("; ", bad.Select(r => $"{r.Node}: {r.Problem}"));
        }
        catch (Exception e) when (StressContext.IsTransient(e))
        {
            return $"not run ({e.GetType().Name}: {e.Message})";
        }
    }
}
