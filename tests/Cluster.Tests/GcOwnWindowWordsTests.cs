using ClusterHeap.Contracts;
using Orleans.Runtime;
using Xunit.Abstractions;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// Words that name a node (its slot and generation) but no object in its arena: the zero-size base, which opens the
/// node's reservation ahead of its spans array and bitmap; a word in that metadata; a word in the slot's window past
/// the arena's end. The node's heap finds each outside its arena and hands it on as foreign, and routing by slot leads
/// back to the same node. Such a word must be counted as dangling there, never sent: a node that sent it to itself got
/// it back, found it foreign again and sent it again, one batch always in flight, so the four counters never agreed and
/// every attempt of the cycle ran out its 10 s (on Client.Tests' shared cluster a shell test's `alloc 0` had rooted
/// the zero-size base, and every later forced cycle outlived the client's response timeout).
/// </summary>
public sealed class GcOwnWindowWordsTests(ITestOutputHelper output)
{
    private const int ObjectSize = 64;
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public async Task WordsNamingANodeButNoObjectInItsArenaAreDanglingAndTheForcedCycleEndsOnItsFirstAttempt(GcMode mode)
    {
        await using HeapCluster heap = await HeapCluster.StartAsync(3, (_, o) =>
        {
            o.GcPercent = -1;   // the forced cycle is the only one
            o.GcMode = mode;
        });
        NodeInfo[] nodes = [.. (await heap.NodesAsync()).OrderBy(n => n.Slot)];
        NodeInfo owner = nodes[1], other = nodes[0];
        ICentralGcGrain gc = heap.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
        ClientLease lease = await gc.RenewClientAsync();
        IGcNodeGrain ownerGc = heap.Client.GetGrain<IGcNodeGrain>(owner.Name);
        IGcNodeGrain otherGc = heap.Client.GetGrain<IGcNodeGrain>(other.Name);

        HeapPointer zero = await heap.MCache(owner.Name).MallocAsync(0);
        Assert.Equal(HeapPointer.HintOf(owner.Slot), zero.Address);          // the first address of the owner's reservation
        Assert.Equal(owner.Generation, zero.Generation);
        var metadata = HeapPointer.Create(owner.Generation, zero.Address + 4096);
        var pastArena = HeapPointer.Create(owner.Generation, zero.Address + (1UL << Heap.HeapLayout.SlotShift) - 8);
        Assert.All(new[] { metadata, pastArena }, p => Assert.Equal(owner.Slot, p.Slot));

        // Both objects are rooted by their malloc; every word of a Pointer object is a pointer word, and they start zeroed.
        HeapPointer local = await heap.MCache(owner.Name).MallocAsync(ObjectSize, ObjectKind.Pointer);
        HeapPointer remote = await heap.MCache(other.Name).MallocAsync(ObjectSize, ObjectKind.Pointer);
        await ownerGc.LinkAsync(local, zero);                     // found by the owner's own scan
        await ownerGc.LinkAsync(local.Offset(8), metadata);
        await ownerGc.LinkAsync(local.Offset(16), pastArena);
        await otherGc.LinkAsync(remote, zero);                    // found on the other node, sent to the owner
        await ownerGc.AddRootsAsync(lease.Client, [zero]);        // a root (the root command accepts the zero-size base)

        ClusterGcCycle cycle = await gc.CollectAsync().WaitAsync(Generous);
        output.WriteLine(cycle.Trace);

        ClusterGcStatus status = await gc.GetGcStatusAsync();
        Assert.True(status.Aborted == 0, $"{status.Aborted} attempts aborted, the last: {status.LastAbort}");
        Assert.Equal(1, status.NumGC);
        Assert.Equal(5, cycle.PerNode.Sum(n => n.Dangling));     // the five words above, each counted once
        Assert.Equal(1, cycle.Batches);                           // the other node's word for the owner; nothing sent back
        Assert.Equal(2, cycle.MarkedObjects);
        Assert.Equal(1, await ownerGc.FinishSweepAsync());        // local survives (the zero-size base is no object)
        Assert.Equal(1, await otherGc.FinishSweepAsync());
        await heap.AssertVerifiedAsync();
    }
}
