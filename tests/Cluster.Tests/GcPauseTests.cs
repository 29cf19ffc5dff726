using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// What the cluster cycle does inside its pauses (docs/DESIGN.md §12, "Where a pause goes"), on three real silos: the
/// last cycle's sweep runs before the stop, so no node sweeps inside a pause; a concurrent cycle's one cluster pause is
/// a round of calls plus the finish when nothing changed while it marked, its pause 1 each node's own cut; every node
/// reports its parts.
/// </summary>
public sealed class GcPauseTests
{
    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public async Task ACycleSweepsWhatTheLastOneLeftBeforeItStopsAndNothingInsideItsPauses(GcMode mode)
    {
        // No background sweeper: the first cycle's garbage stays in unswept spans until the second cycle starts.
        await using HeapCluster heap = await HeapCluster.StartAsync(3, (_, o) =>
        {
            o.GcPercent = -1;
            o.GcMode = mode;
            o.BackgroundSweeper = false;
        });
        ICentralGcGrain gc = heap.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
        GrainId client = (await gc.RenewClientAsync()).Client;   // the test client's connection, as the cluster knows it
        NodeInfo[] nodes = await heap.NodesAsync();
        foreach (NodeInfo n in nodes)
        {
            MallocBatchResult garbage = await heap.MCache(n.Name).MallocBatchAsync(3000, 64, ObjectKind.Pointer);
            Assert.Null(garbage.Error);
            foreach (IGrouping<int, HeapPointer> owner in garbage.Pointers.GroupBy(p => p.Slot))
            {
                string name = nodes.Single(x => x.Slot == owner.Key).Name;
                Assert.Equal(owner.Count(), await heap.Client.GetGrain<IGcNodeGrain>(name).ReleaseRootsAsync(client, [.. owner]));
            }
        }

        ClusterGcCycle first = await gc.CollectAsync();
        ClusterGcCycle second = await gc.CollectAsync();

        Assert.All(first.PerNode, n => Assert.Equal(0, n.Parts!.SweptBeforeStop));    // nothing was unswept yet
        Assert.All(second.PerNode, n => Assert.True(n.Parts!.SweptBeforeStop > 0, $"{n.Node}: the first cycle's garbage waited to be swept"));
        Assert.All(second.PerNode, n => Assert.Equal(0, n.Parts!.SweptInPause));
        Assert.All(second.PerNode, n => Assert.True(n.Parts!.PausedMs > 0 && n.Parts.PausedMs <= second.PauseMs + second.MarkMs,
            $"{n.Node}: the gate was closed {n.Parts.PausedMs} ms, in a cycle of {second.PauseMs + second.MarkMs} ms"));
        GcCycleParts parts = second.Parts!;
        Assert.True(parts.SweepMs > 0);
        // Concurrent: stop+terminate and finish (the cut round is no pause of the cluster's); nothing ran between the
        // mark's last wave and the stop, so the stop's termination step ends the mark. Stop the world: stop, begin, the
        // counter waves, finish.
        Assert.True(mode == GcMode.Concurrent ? parts.Rounds == 2 : parts.Rounds >= 4, $"{parts.Rounds} rounds of calls inside the pauses");
        if (mode == GcMode.Concurrent)
        {
            // Pause 1 is the longest node's own cut, as that node clocked it.
            Assert.All(second.PerNode, n => Assert.True(n.Parts!.CutMs > 0, $"{n.Node}: no cut clocked"));
            Assert.Equal(second.PerNode.Max(n => n.Parts!.CutMs), second.StopMs);
        }
    }

    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public async Task EveryNodesStepsLieInsideTheCoordinatorsPausesAndThePauseToTheLastGateCoversEveryClosedGate(GcMode mode)
    {
        await using HeapCluster heap = await HeapCluster.StartAsync(3, (_, o) =>
        {
            o.GcPercent = -1;
            o.GcMode = mode;
        });
        ICentralGcGrain gc = heap.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
        foreach (NodeInfo n in await heap.NodesAsync())
        {
            Assert.Null((await heap.MCache(n.Name).MallocBatchAsync(2000, 64, ObjectKind.Pointer)).Error);
        }

        await gc.CollectAsync();
        ClusterGcCycle cycle = await gc.CollectAsync();

        // One process, one clock: every node's times are on the coordinator's timeline, in causal order.
        GcCycleTimes c = cycle.Parts!.Times!;
        foreach (GcNodeCycle node in cycle.PerNode)
        {
            GcNodeTimes t = node.Parts!.Times!;
            Assert.Equal(c.Clock, t.Clock);
            string at = $"{node.Node}: coordinator {c}, node {t}";
            Assert.True(c.StopAtUs <= t.StopAtUs, at);
            Assert.True(t.FinishAtUs >= c.FinishAtUs && t.OpenedAtUs >= t.FinishAtUs && t.OpenedAtUs <= c.EndAtUs, at);
            if (mode == GcMode.Concurrent)
            {
                // The node's cut ended (its gate open again) before the coordinator, which waits for every cut, stopped
                // the cluster for pause 2.
                Assert.True(t.StopAtUs < t.ResumedAtUs && t.ResumedAtUs <= c.Stop2AtUs, at);
                Assert.True(c.Stop2AtUs <= t.Stop2AtUs && t.Stop2AtUs <= c.FinishAtUs, at);
            }
            else
            {
                Assert.True(t.ResumedAtUs == 0 && t.Stop2AtUs == 0 && t.StopAtUs <= c.FinishAtUs, at);
            }
        }

        // The pause ended at the last gate's opening: never shorter than any node's gate stayed closed, never longer
        // than the coordinator's figure (which waits for the replies as well).
        double toLastGate = GcPauseTimeline.ToLastGateMs(cycle) ?? throw new InvalidOperationException("no shared clock in one process");
        Assert.True(toLastGate <= cycle.PauseMs, $"to the last gate {toLastGate} ms, the coordinator's pause {cycle.PauseMs} ms");
        Assert.All(cycle.PerNode, n => Assert.True(n.Parts!.PausedMs <= toLastGate,
            $"{n.Node}: its gate was closed {n.Parts.PausedMs} ms, longer than the pause to the last gate, {toLastGate} ms"));
    }
}
