using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using static ClusterHeap.Client.Stress.StressFields;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// `stress graph` on a cluster of its own: the exact check (every node's HeapObjects equals the model's reachable count
/// after a forced cycle) needs a heap that holds nothing but the run's objects, which the shared cluster does not.
/// </summary>
public sealed class GraphStressTests
{
    [Fact]
    public async Task AShortGraphRunChecksEveryReachableCookieAfterEachCycleAndEndsWithExactlyTheReachableObjects()
    {
        await using ClusterConnection c = await ClusterConnection.OpenAsync(EmbeddedClusterFixture.Options);
        var o = new StressOptions { Workload = "graph", Ops = 3000, Workers = 3, Slots = 100, Progress = false };
        var output = new StringWriter();

        StressReport r = await StressCommand.RunReportAsync(o, c, output);

        Assert.True(r.Passed, output.ToString());
        Assert.StartsWith("yes", (string)r.Get(Extra)["gc_exact"]);
        Assert.True((long)r.Get(Extra)["gc_cycles"] >= 2, output.ToString());
        Assert.True((long)r.Get(Extra)["gc_reclaimed"] > 0, output.ToString());
        Assert.True((long)r.Get(Extra)["gc_checked"] > 0, output.ToString());
        Assert.True((double)r.Get(Extra)["gc_pause_max_ms"] > 0, output.ToString());
    }
}
