using ClusterHeap.Contracts;

namespace ClusterHeap.Cluster.Tests;

/// <summary>Bad remote input gets a typed error with a readable message, and changes nothing.</summary>
[Collection(SharedClusterCollection.Name)]
public sealed class BadInputTests(SharedClusterFixture fixture)
{
    private readonly HeapCluster _heap = fixture.Heap;

    [Fact]
    public async Task BadPointersGetTypedErrorsAndChangeNothing()
    {
        NodeInfo[] nodes = await _heap.NodesAsync();
        NodeInfo a = nodes[0];
        NodeInfo b = nodes[1];
        IHeapNodeGrain grain = _heap.Node(a.Name);
        HeapPointer p = await _heap.MCache(a.Name).MallocAsync(64);
        byte[] cookie = BitConverter.GetBytes(0xC00C1E00UL ^ p.Value);
        await grain.WriteAsync(p, cookie);
        NodeStats before = await grain.GetStatsAsync();

        InvalidHeapPointerException interior = await Assert.ThrowsAsync<InvalidHeapPointerException>(() => grain.FreeAsync(p.Offset(8)));
        Assert.Equal("Interior", interior.Error.Reason);
        Assert.Contains(p.Offset(8).ToString(), interior.Message);

        var outside = HeapPointer.Create(a.Generation, HeapPointer.HintOf(a.Slot) + 16);
        InvalidHeapPointerException foreign = await Assert.ThrowsAsync<InvalidHeapPointerException>(() => grain.FreeAsync(outside));
        Assert.Equal("OutsideArena", foreign.Error.Reason);

        NodeGoneException otherNode = await Assert.ThrowsAsync<NodeGoneException>(() => grain.FreeAsync(HeapPointer.Create(b.Generation, HeapPointer.HintOf(b.Slot) + 4096)));
        Assert.Equal(HeapError.UnknownSlot, otherNode.Error.Reason);

        var stale = HeapPointer.Create((ushort)(a.Generation + 1000), p.Address);
        NodeGoneException staleError = await Assert.ThrowsAsync<NodeGoneException>(() => grain.FreeAsync(stale));
        Assert.Equal(HeapError.StaleGeneration, staleError.Error.Reason);
        NodeGoneException routed = await Assert.ThrowsAsync<NodeGoneException>(() => _heap.Router.FreeAsync(stale));
        Assert.Equal(HeapError.StaleGeneration, routed.Error.Reason);

        var unknownSlot = HeapPointer.Create(1, HeapPointer.HintOf(100) + 64);
        NodeGoneException unknown = await Assert.ThrowsAsync<NodeGoneException>(() => _heap.Router.ReadAsync(unknownSlot, 8));
        Assert.Equal(HeapError.UnknownSlot, unknown.Error.Reason);

        HeapOutOfBoundsException readPast = await Assert.ThrowsAsync<HeapOutOfBoundsException>(() => grain.ReadAsync(p, 65));
        Assert.Contains("64 bytes", readPast.Message);
        await Assert.ThrowsAsync<HeapOutOfBoundsException>(() => grain.WriteAsync(p.Offset(60), new byte[8]));

        NodeStats after = await grain.GetStatsAsync();
        Assert.Equal(before.Mallocs, after.Mallocs);
        Assert.Equal(before.Frees, after.Frees);
        Assert.Equal(before.HeapAlloc, after.HeapAlloc);
        Assert.Equal(cookie, await grain.ReadAsync(p, 8));

        await grain.FreeAsync(p);
        InvalidHeapPointerException twice = await Assert.ThrowsAsync<InvalidHeapPointerException>(() => grain.FreeAsync(p));
        Assert.Equal("AlreadyFreed", twice.Error.Reason);
        Assert.Equal(after.Frees + 1, (await grain.GetStatsAsync()).Frees);
        await _heap.AssertVerifiedAsync();
    }

    [Fact]
    public async Task BatchRepliesCarryOneErrorPerItem()
    {
        NodeInfo a = (await _heap.NodesAsync())[0];
        MallocBatchResult batch = await _heap.MCache(a.Name).MallocBatchAsync(3, 32);
        HeapPointer[] ptrs = batch.Pointers;
        HeapError?[] errors = await _heap.Node(a.Name).FreeBatchAsync(new PointerBatch([ptrs[0], ptrs[0].Offset(4), ptrs[1], ptrs[0], ptrs[2]]));
        Assert.Null(errors[0]);
        Assert.Equal(HeapErrorKind.InvalidPointer, errors[1]!.Kind);
        Assert.Null(errors[2]);
        Assert.Equal("AlreadyFreed", errors[3]!.Reason);
        Assert.Null(errors[4]);

        MallocBatchResult negative = await _heap.MCache(a.Name).MallocBatchAsync(2, -1);
        Assert.Equal(HeapErrorKind.InvalidArgument, negative.Error!.Kind);
        Assert.Empty(negative.Pointers);
    }
}
