using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;
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

    [Fact]
    public async Task CyclesThePacerStartsInTheMiddleOfTheRoundsFreeNothingTheWorkersStillReach()
    {
        // GOGC 10 on a small heap: the pacer starts concurrent cycles while the workers link, rewire and release, so a
        // cycle may run between a write that leaves an object reachable only through another and the next write into it.
        await using ClusterConnection c = await ClusterConnection.OpenAsync(EmbeddedClusterFixture.Options);
        ICentralGcGrain gc = c.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
        await gc.SetGcModeAsync(GcMode.Concurrent);
        await gc.SetGcPercentAsync(10);
        long before = (await gc.GetGcStatusAsync()).NumGC;
        var o = new StressOptions { Workload = "graph", Ops = 30_000, Workers = 3, Slots = 200, Size = 4096, Live = 24L << 20, Progress = false };
        var output = new StringWriter();

        StressReport r = await StressCommand.RunReportAsync(o, c, output);

        ClusterGcStatus status = await gc.GetGcStatusAsync();
        Assert.True(r.Passed, output.ToString());
        Assert.StartsWith("yes", (string)r.Get(Extra)["gc_exact"]);
        Assert.Contains(status.Recent, cycle => cycle.Number > before && !cycle.Forced);   // the pacer did start some
    }
}
