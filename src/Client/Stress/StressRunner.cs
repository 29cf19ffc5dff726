using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// Runs one workload: start (nodes, P), untimed fill, the timed phase with progress and the cluster's
/// committed-bytes sampler, its wind-down (StressContext.Phases.cs), the cluster's end figures (ClusterFigures),
/// the final cookie check and free of everything still live, and the verifier; then hands what each part
/// measured to the report (StressOutcome), whose fields take their values from it. Ctrl+C (<c>interrupt</c>) only ends the fill
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

        ClusterFigures cluster = await ClusterFigures.BeginAsync(connection);
        Latency[] latencies = Enumerable.Range(0, workers).Select(_ => new Latency()).ToArray();
        using var done = new CancellationTokenSource();
        ctx.BeginTimed();
        started?.Invoke(ctx);
        Task sampler = cluster.SampleAsync(done.Token);
        Task progress = options.Progress == false ? Task.CompletedTask : new Progress(ctx, output, terminal).RunAsync(done.Token);
        try
        {
            await workload.RunAsync(latencies);
        }
        finally
        {
            ctx.EndWindDown();
            await done.CancelAsync();
            await Task.WhenAll(sampler, progress);
        }

        await cluster.EndAsync();
        await workload.TeardownAsync();
        string verify = await VerifyAsync(connection);

        var all = new Latency();
        foreach (Latency l in latencies) all.Merge(l);
        return StressReport.From(new StressOutcome(options, ctx, workload, workers, nodes, all, cluster, verify, interrupt.IsCancellationRequested));
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
