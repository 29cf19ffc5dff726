using ClusterHeap.Contracts;

namespace ClusterHeap.Cluster.Tests;

/// <summary>A node with a full arena keeps allocating through spans other nodes lend it.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class LeaseTests(SharedClusterFixture fixture)
{
    private readonly HeapCluster _heap = fixture.Heap;

    [Fact]
    public async Task AFullNodeAllocatesThroughLeasesAndFreesReachTheLender()
    {
        NodeInfo small = await _heap.NodeAsync(fixture.SmallNode);
        IMCacheGrain mcache = _heap.MCache(small.Name, 1);
        var pointers = new List<HeapPointer>();
        // 16 MiB of 1 KiB objects through a node whose whole arena is 8 MiB.
        for (int i = 0; i < 16; i++)
        {
            MallocBatchResult batch = await mcache.MallocBatchAsync(1024, 1024);
            Assert.Null(batch.Error);
            pointers.AddRange(batch.Pointers);
        }

        HeapPointer[] leased = pointers.Where(p => p.Slot != small.Slot).ToArray();
        Assert.NotEmpty(leased);
        NodeInfo[] nodes = await _heap.NodesAsync();
        Assert.All(leased, p => Assert.Contains(nodes, n => n.Slot == p.Slot && n.Generation == p.Generation && n.Name != small.Name));

        NodeStats smallStats = await _heap.Node(small.Name).GetStatsAsync();
        Assert.True(smallStats.LeasesTaken > 0);
        Assert.True(smallStats.LeasedMallocs >= leased.Length);
        ClusterStats cluster = await _heap.CentralHeap.GetStatsAsync();
        Assert.True(cluster.Sum.LeasesLent >= smallStats.LeasesTaken);
        Assert.True(cluster.ActiveLeases > 0);

        // Writes and frees of leased objects go to the lender.
        NodeInfo lender = nodes.Single(n => n.Slot == leased[0].Slot);
        NodeStats lenderBefore = await _heap.Node(lender.Name).GetStatsAsync();
        HeapPointer[] toLender = leased.Where(p => p.Slot == lender.Slot).ToArray();
        await _heap.Router.WriteAsync(toLender[0], [1, 2, 3]);
        Assert.Equal([1, 2, 3], await _heap.Router.ReadAsync(toLender[0], 3));
        Assert.All(await _heap.Router.FreeBatchAsync([.. pointers]), Assert.Null);
        NodeStats lenderAfter = await _heap.Node(lender.Name).GetStatsAsync();
        Assert.Equal(lenderBefore.Frees + toLender.Length, lenderAfter.Frees);

        await mcache.ReturnLeasesAsync();
        await _heap.AssertVerifiedAsync();
    }

    [Fact]
    public async Task LargeObjectsComeFromAnotherNodeWhenTheArenaIsFull()
    {
        NodeInfo small = await _heap.NodeAsync(fixture.SmallNode);
        IMCacheGrain mcache = _heap.MCache(small.Name);
        var pointers = new List<HeapPointer>();
        for (int i = 0; i < 12; i++)
        {
            pointers.Add(await mcache.MallocAsync(1L << 20)); // 12 MiB of 1 MiB objects into an 8 MiB arena
        }

        HeapPointer[] remote = pointers.Where(p => p.Slot != small.Slot).ToArray();
        Assert.NotEmpty(remote);
        await _heap.Router.WriteAsync(remote[0].Offset((1L << 20) - 4), [9, 9, 9, 9]);
        Assert.Equal([9, 9, 9, 9], await _heap.Router.ReadAsync(remote[0].Offset((1L << 20) - 4), 4));
        Assert.All(await _heap.Router.FreeBatchAsync([.. pointers]), Assert.Null);
        await _heap.AssertVerifiedAsync();
    }
}
