using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using static ClusterHeap.Client.Stress.StressFields;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// A silo killed (not stopped) under a running larson, as CI's SIGKILL does: the workers act on membership's
/// verdict and keep going on the survivors, instead of waiting out the replies of calls the dead silo carried.
/// Its own cluster: nothing else may share a node that dies. In-process, a killed silo's calls fail at once rather
/// than being lost as SIGKILL loses them, so this holds with or without the client's membership watcher; the
/// stall itself reproduces only with processes (README, "the stall after a SIGKILL").
/// </summary>
public sealed class NodeKillTests
{
    /// <summary>Operations the run must make after the kill.</summary>
    private const long AfterKill = 20_000;

    [Fact]
    public async Task LarsonKeepsMakingProgressAfterASiloIsKilledUnderIt()
    {
        await using ClusterConnection c = await ClusterConnection.OpenAsync(
            EmbeddedClusterFixture.Options with { ArenaSize = 64L << 20 });
        var options = new StressOptions
        {
            Workload = "larson",
            Duration = TimeSpan.FromMinutes(5),
            Workers = 6,
            Batch = 16,
            Slots = 300,
            Handoff = 200,
            Progress = false,
        };
        var killed = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        Task? afterKill = null;
        var output = new StringWriter();
        Task<StressReport> run = StressRunner.RunAsync(c, options, output, terminal: false, started: ctx => _ = Task.Run(async () =>
        {
            try
            {
                await ctx.WhenTimedOpsReach(5000);
                await c.KillEmbeddedSiloAsync(2);
                long at = ctx.TimedOps;
                afterKill = ctx.WhenTimedOpsReach(at + AfterKill);
                killed.SetResult(at);
                await afterKill;
            }
            catch (Exception e)
            {
                killed.TrySetException(e);
            }
            finally
            {
                ctx.Stop.Cancel();   // ends the timed phase once the claim is decided (or a step failed)
            }
        }));

        long opsAtKill = await killed.Task.WaitAsync(TimeSpan.FromSeconds(120));
        // The claim: the workers go on after the kill. Calls the dead silo carried would hold them for Orleans'
        // 30 s response timeout; the bound is below that, and far above what the survivors need for these ops.
        Task progressed = afterKill!.WaitAsync(TimeSpan.FromSeconds(25));
        StressReport r = await run.WaitAsync(TimeSpan.FromSeconds(180));
        r.WriteText(output);
        await progressed;

        Assert.True(r.Get(Ops) >= opsAtKill + AfterKill, output.ToString());
        Assert.Equal(0, r.Get(CookieFailures));
        Assert.Contains("node2", r.Get(NodesGone));
        Assert.True(r.Get(Errors) == 0, output.ToString());
        Assert.True(r.Passed, output.ToString());
    }
}
