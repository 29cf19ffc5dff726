using ClusterHeap.Contracts;

namespace ClusterHeap.Cluster.Tests;

/// <summary>The cluster memory limit: out of memory names the limit; frees and scavenging make room again.</summary>
public sealed class MemoryLimitTests
{
    private const long Limit = 16L << 20;

    [Fact]
    public async Task AtTheLimitAllocationFailsNamingItAndSucceedsAgainAfterFrees()
    {
        await using HeapCluster heap = await HeapCluster.StartAsync(2, (_, o) => o.ClusterMemoryLimit = Limit);
        NodeInfo[] nodes = await heap.NodesAsync();
        IMCacheGrain mcache = heap.MCache(nodes[0].Name);
        var pointers = new List<HeapPointer>();
        HeapError? error = null;
        for (int i = 0; i < 64 && error is null; i++)
        {
            MallocBatchResult batch = await mcache.MallocBatchAsync(1024, 1024);
            pointers.AddRange(batch.Pointers);
            error = batch.Error;
        }

        Assert.NotNull(error);
        Assert.Equal(HeapErrorKind.OutOfMemory, error.Kind);
        Assert.Equal("ClusterMemoryLimit", error.Reason);
        Assert.Equal(Limit, error.Limit);
        Assert.Contains(Limit.ToString(), error.Message);
        ClusterStats stats = await heap.CentralHeap.GetStatsAsync();
        Assert.True(stats.TotalGranted <= Limit);
        Assert.True(pointers.Count > 8 * 1024); // it went past one node's first grant

        ClusterOutOfMemoryException single = await Assert.ThrowsAsync<ClusterOutOfMemoryException>(() => mcache.MallocAsync(1024));
        Assert.Contains("cluster memory limit", single.Message);

        Assert.All(await heap.Router.FreeBatchAsync([.. pointers]), Assert.Null);
        await mcache.ReturnLeasesAsync();
        foreach (NodeInfo node in nodes)
        {
            await heap.Node(node.Name).ScavengeAsync(force: true);
        }

        MallocBatchResult again = await mcache.MallocBatchAsync(4096, 1024);
        Assert.Null(again.Error);
        await heap.AssertVerifiedAsync();
    }

    [Fact]
    public async Task TheLimitChangesAtRunTime()
    {
        await using HeapCluster heap = await HeapCluster.StartAsync(2);
        Assert.Equal(long.MaxValue, await heap.CentralHeap.GetMemoryLimitAsync());
        await heap.CentralHeap.SetMemoryLimitAsync(Limit);
        Assert.Equal(Limit, await heap.CentralHeap.GetMemoryLimitAsync());
        await Assert.ThrowsAsync<ClusterHeapException>(() => heap.CentralHeap.SetMemoryLimitAsync(-1));
    }
}
