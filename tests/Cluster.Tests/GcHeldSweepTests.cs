using System.Diagnostics;
using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// A node's finish holds its background sweeper until the coordinator has every finish's reply and starts it with a
/// one-way call (docs/DESIGN.md §12). When another node's finish fails the cycle aborts and no such call comes: the
/// abort must start the sweeper the finish held, or that node's spans wait unswept until a refill or the next cycle
/// needs them. Driven here step by step on one node, as a coordinator whose other node failed would drive it.
/// </summary>
public sealed class GcHeldSweepTests
{
    private const long Cycle = 1_000_000;                       // the only cycle: GcPercent -1, and none forced
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AnAbortAfterThisNodesFinishStartsTheSweeperItsFinishHeld()
    {
        await using HeapCluster heap = await HeapCluster.StartAsync(2, (_, o) =>
        {
            o.GcPercent = -1;   // no cycle but this one
            o.GcMode = GcMode.StopTheWorld;
        });
        NodeInfo[] nodes = [.. (await heap.NodesAsync()).OrderBy(n => n.Slot)];
        NodeInfo node = nodes[0];
        Assert.Null((await heap.MCache(node.Name).MallocBatchAsync(2000, 64, ObjectKind.Pointer)).Error);
        IGcNodeGrain gc = heap.Client.GetGrain<IGcNodeGrain>(node.Name);
        SiloAddress coordinator = heap.Cluster.Silos[0].SiloAddress;
        var plan = new GcMarkPlan(Cycle, [.. nodes.Select(n => n.Slot)], [.. nodes.Select(n => n.Generation)], [.. nodes.Select(n => n.Name)],
            [], [], DropUnknownClients: false, GcMode.StopTheWorld);

        await gc.StopWorldAsync(Cycle, coordinator);
        await gc.BeginMarkAsync(plan);
        await gc.FinishAsync(Cycle, long.MaxValue);
        Assert.True((await heap.Node(node.Name).GetStatsAsync()).Gc.SweepPending, "the finish left every in-use span to be swept");

        // The other node's finish failed: the coordinator aborts the cycle everywhere and sends no SweepInBackgroundAsync.
        await gc.AbortAsync(Cycle, "another node's finish failed");
        var waited = Stopwatch.StartNew();
        bool pending = true;
        while (pending && waited.Elapsed < Generous)
        {
            pending = (await heap.Node(node.Name).GetStatsAsync()).Gc.SweepPending;   // each poll is a call to the silo
        }

        Assert.False(pending, $"the spans still waited for their sweep {Generous} after the abort: the sweeper the finish held was never started");
        await heap.AssertVerifiedAsync();
    }
}
