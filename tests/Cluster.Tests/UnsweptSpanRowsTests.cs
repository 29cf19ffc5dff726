using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using ClusterHeap.Heap;
using Microsoft.Extensions.DependencyInjection;

namespace ClusterHeap.Cluster.Tests;

/// <summary>A node's span rows and heap map, as the grain serves them to every map, say which spans its last collection left to sweep.</summary>
public sealed class UnsweptSpanRowsTests
{
    [Fact]
    public async Task AfterACollectionTheNodesRowsAndHeapMapSayUnsweptUntilTheSweepFinishes()
    {
        await using HeapCluster cluster = await HeapCluster.StartAsync(1, (_, o) => o.BackgroundSweeper = false);
        string node = (await cluster.NodesAsync()).Single().Name;
        HeapPointer large = await cluster.MCache(node).MallocAsync(200_000);
        MallocBatchResult batch = await cluster.MCache(node).MallocBatchAsync(100, 64);
        Assert.Null(batch.Error);
        Assert.DoesNotContain(await cluster.Node(node).GetSpansAsync(), r => r.Unswept);

        // The node's own collector: nothing roots the client's objects, so the cycle finds them all unreachable.
        NodeHeap heap = cluster.Cluster.GetSiloServiceProvider(cluster.Cluster.Silos.Single().SiloAddress).GetRequiredService<HeapNodeService>().Heap;
        heap.Collect();

        SpanRow[] rows = await cluster.Node(node).GetSpansAsync();
        SpanRow largeRow = rows.Single(r => r.Start == large.Address);
        Assert.True(largeRow.InUse && largeRow.Unswept, $"{largeRow}");
        ulong small = batch.Pointers[^1].Address;
        SpanRow smallRow = rows.Single(r => r.InUse && r.Start <= small && small < r.Start + (ulong)r.Pages * HeapConstants.PageSize);
        Assert.True(smallRow.Unswept, $"{smallRow}");
        HeapMap map = await cluster.Node(node).GetHeapMapAsync();
        Assert.Equal(MapState.Unswept, map.Rows.Single(r => r.Start == large.Address).State);
        Assert.Equal(MapState.Unswept, map.Rows.Single(r => r.Start == smallRow.Start).State);

        heap.FinishSweep();

        rows = await cluster.Node(node).GetSpansAsync();
        Assert.DoesNotContain(rows, r => r.Unswept);
        Assert.DoesNotContain(rows, r => r.InUse && r.Start == large.Address);
        Assert.DoesNotContain((await cluster.Node(node).GetHeapMapAsync()).Rows, r => r.State == MapState.Unswept);
    }
}
