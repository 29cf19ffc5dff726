using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using static ClusterHeap.Client.Stress.StressFields;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// A node that leaves during a stress run (CI kills one with SIGKILL; here an embedded silo is stopped):
/// its objects are counted as lost, the run goes on on the other nodes and still passes. Its own
/// cluster: nothing else may share a node that dies.
/// </summary>
public sealed class NodeLossTests
{
    [Fact]
    public async Task ObjectsOfANodeThatLeavesMidRunAreLostNotFailures()
    {
        await using ClusterConnection c = await ClusterConnection.OpenAsync(
            EmbeddedClusterFixture.Options with { ArenaSize = 64L << 20 });
        var options = new StressOptions { Workload = "larson", Ops = 12_000, Workers = 3, Batch = 16, Slots = 300, Handoff = 100, Progress = false };
        Task? stopped = null;
        var output = new StringWriter();
        StressReport r = await StressRunner.RunAsync(c, options, output, terminal: false, started: ctx =>
            stopped = Task.Run(async () =>
            {
                await ctx.WhenTimedOpsReach(3000);
                await c.StopEmbeddedSiloAsync(2);
            }));
        await stopped!;
        r.WriteText(output);

        Assert.Equal(0, r.Get(CookieFailures));
        Assert.True(r.Get(Errors) == 0, output.ToString());
        Assert.Contains("node2", r.Get(NodesGone));
        Assert.True(r.Get(LostObjects) > 0, output.ToString());
        Assert.True(r.Get(Ops) >= options.Ops);
        Assert.True(r.Passed);
        Assert.Equal(2, (await c.NodesAsync()).Length);
    }
}
