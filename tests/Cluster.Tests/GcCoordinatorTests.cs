using System.Diagnostics;
using ClusterHeap.Contracts;
using ClusterHeap.Grains.Gc;
using Microsoft.Extensions.DependencyInjection;
using Orleans.TestingHost;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// The central heap as the collector's coordinator across its own moves and its callers' timeouts: cycle ids and the
/// cycle count rebuilt from the nodes when it activates elsewhere (CentralHeapGrain.GcHistory.cs), and a forced cycle
/// that cannot complete answering with its reason before the client's response timeout (ForcedDeadline.cs). Each test
/// has its own three-silo cluster with the pacer off, so every cycle is one the test forced.
/// </summary>
public sealed class GcCoordinatorTests
{
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);
    private static readonly TimeSpan ClientResponseTimeout = TimeSpan.FromSeconds(10);   // the CLI's (ClusterConnection)

    private static ICentralGcGrain Gc(HeapCluster heap) => heap.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

    private static Task<HeapCluster> StartAsync() => HeapCluster.StartAsync(3, (_, o) => o.GcPercent = -1);

    private static async Task<InProcessSiloHandle> CoordinatorAsync(HeapCluster heap)
    {
        string coordinator = (await Gc(heap).GetGcStatusAsync()).Coordinator;
        return heap.Cluster.Silos.Single(s => s.SiloAddress.ToString() == coordinator);
    }

    [Fact]
    public async Task ACoordinatorWhoseClockIsBehindACycleANodeAbortedStillCompletesTheNextForcedCycleOnItsFirstAttempt()
    {
        await using HeapCluster heap = await StartAsync();
        await Gc(heap).CollectAsync().WaitAsync(Generous);
        InProcessSiloHandle central = await CoordinatorAsync(heap);
        string survivor = heap.Cluster.Silos.First(s => s.SiloAddress != central.SiloAddress).Name;
        // A coordinator on a host whose clock ran a day ahead aborted a cycle on this node; then it moved here, where
        // the clock is today's. The node refuses a stop of any cycle at or below the one it aborted.
        long ahead = DateTime.UtcNow.AddDays(1).Ticks;
        await heap.Client.GetGrain<IGcNodeGrain>(survivor).AbortAsync(ahead, "a coordinator whose clock ran a day ahead gave up");
        await heap.KillAndReclaimAsync(central);

        ClusterGcCycle next = await Gc(heap).CollectAsync().WaitAsync(Generous);
        ClusterGcStatus status = await Gc(heap).GetGcStatusAsync();
        Assert.Equal(2, next.PerNode.Length);
        Assert.True(status.Aborted == 0, $"{status.Aborted} attempts aborted, the last: {status.LastAbort}");
    }

    [Fact]
    public async Task TheCycleCountCarriesOnPastTheLastCycleAfterTheCentralHeapsSiloIsKilled()
    {
        await using HeapCluster heap = await StartAsync();
        ClusterGcCycle last = null!;
        for (int i = 0; i < 3; i++)
        {
            last = await Gc(heap).CollectAsync().WaitAsync(Generous);
        }

        Assert.Equal(3, last.Number);
        await heap.KillAndReclaimAsync(await CoordinatorAsync(heap));

        Assert.Equal(last.Number, (await Gc(heap).GetGcStatusAsync()).NumGC);
        ClusterGcCycle next = await Gc(heap).CollectAsync().WaitAsync(Generous);
        Assert.Equal(last.Number + 1, next.Number);
        Assert.StartsWith($"gc {last.Number + 1} @", next.Trace);
    }

    [Fact]
    public async Task AForcedCycleThatCannotCompleteAnswersWithItsReasonBeforeTheClientsResponseTimeout()
    {
        await using HeapCluster heap = await StartAsync();
        InProcessSiloHandle stuck = heap.Cluster.Silos[1];
        GcNode stuckGc = heap.Cluster.GetSiloServiceProvider(stuck.SiloAddress).GetRequiredService<GcNode>();
        var release = new TaskCompletionSource();
        stuckGc.AfterRootsMarked = _ => release.Task;   // every mark on this node hangs: no cycle can complete
        try
        {
            long t0 = Stopwatch.GetTimestamp();
            Exception e = await Assert.ThrowsAnyAsync<Exception>(() => Gc(heap).CollectAsync().WaitAsync(Generous));
            TimeSpan took = Stopwatch.GetElapsedTime(t0);

            Assert.True(took < ClientResponseTimeout, $"the forced cycle answered after {took.TotalSeconds:0.0} s: {e}");
            Assert.Contains("aborted 1 times", e.Message);
            Assert.Contains($"{stuck.Name} did not answer the mark step", e.Message);
        }
        finally
        {
            stuckGc.AfterRootsMarked = null;
            release.TrySetResult();
        }

        // Nothing stays stuck: the next forced cycle completes over all three nodes.
        ClusterGcCycle next = await Gc(heap).CollectAsync().WaitAsync(Generous);
        Assert.Equal(3, next.PerNode.Length);
    }
}
