using ClusterHeap.Contracts;

namespace ClusterHeap.Cluster.Tests;

[Collection(SharedClusterCollection.Name)]
public sealed class PlacementTests(SharedClusterFixture fixture)
{
    private readonly HeapCluster _heap = fixture.Heap;

    [Fact]
    public async Task EachMCacheRunsOnItsOwnSiloAndItsAddressesNameItsSlot()
    {
        NodeInfo[] nodes = await _heap.NodesAsync();
        Assert.Equal(_heap.Cluster.Silos.Count, nodes.Length);
        foreach (NodeInfo node in nodes)
        {
            for (int p = 0; p < 2; p++)
            {
                IMCacheGrain mcache = _heap.MCache(node.Name, p);
                HeapPointer pointer = await mcache.MallocAsync(48);
                MCacheInfo info = await mcache.GetInfoAsync();
                Assert.Equal(node.Name, info.Node); // the grain found its own silo's heap
                Assert.Equal(node.Slot, pointer.Slot);
                Assert.Equal(node.Generation, pointer.Generation);
                Assert.Equal(node.Silo, (await _heap.Node(node.Name).GetInfoAsync()).Silo);
                await _heap.Router.FreeAsync(pointer);
            }
        }
    }

    [Fact]
    public async Task SlotsAreUniqueAndGenerationsNonZero()
    {
        NodeInfo[] nodes = await _heap.NodesAsync();
        Assert.Equal(nodes.Length, nodes.Select(n => n.Slot).Distinct().Count());
        Assert.All(nodes, n => Assert.NotEqual(0, n.Generation));
        Assert.Equal(nodes.Length, nodes.Select(n => n.Generation).Distinct().Count());
    }

    [Fact]
    public async Task AnMCacheKeyForAnotherSiloOrPastPIsRefused()
    {
        await Assert.ThrowsAnyAsync<Exception>(() => _heap.MCache("no-such-node").MallocAsync(8));
        NodeInfo node = (await _heap.NodesAsync())[0];
        await Assert.ThrowsAnyAsync<Exception>(() => _heap.MCache(node.Name, 99).MallocAsync(8));
    }

    [Fact]
    public async Task BatchMallocReturnsDistinctPointersInOneNode()
    {
        NodeInfo node = (await _heap.NodesAsync())[0];
        MallocBatchResult batch = await _heap.MCache(node.Name).MallocBatchAsync(1024, 64);
        Assert.Null(batch.Error);
        Assert.Equal(1024, batch.Pointers.Length);
        Assert.Equal(1024, batch.Pointers.Distinct().Count());
        Assert.All(batch.Pointers, p => Assert.Equal(node.Slot, p.Slot));
        Assert.All(await _heap.Router.FreeBatchAsync(batch.Pointers), Assert.Null);
        await _heap.AssertVerifiedAsync();
    }
}
