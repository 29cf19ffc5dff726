using ClusterHeap.Contracts;
using ClusterHeap.Grains.Gc;
using ClusterHeap.Heap;
using Orleans.Runtime;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// A node's client roots (Gc/ClientRoots.cs) on a real node heap, without a cluster: what a malloc batch roots, what a
/// free drops (and what it must not: a root the next malloc of the same address took), and which clients a cycle's
/// plan takes the roots of.
/// </summary>
public sealed class ClientRootsTests : IDisposable
{
    private const ushort Generation = 3;
    private static readonly GrainId A = GrainId.Create("sys.client", "a");
    private static readonly GrainId B = GrainId.Create("sys.client", "b");

    private readonly NodeHeap _heap = NodeHeap.Create(new HeapOptions { ArenaSize = 64L << 20, Slot = 12 });
    private readonly ClientRoots _roots;

    public ClientRootsTests() => _roots = new ClientRoots(_heap);

    public void Dispose() => _heap.Dispose();

    private int Slot => HeapPointer.SlotOf(_heap.ArenaStart);

    private HeapPointer Local(int i) => HeapPointer.Create(Generation, _heap.ArenaStart + (ulong)(64 * i));

    private HeapPointer[] Locals(int n) => [.. Enumerable.Range(1, n).Select(Local)];

    [Fact]
    public void ABatchRootsThisNodesPointersOnceAndHandsBackTheOthersWithoutRootingThem()
    {
        var other = HeapPointer.Create(Generation, HeapPointer.HintOf(Slot + 1) + 4096);
        var staleGeneration = HeapPointer.Create(Generation + 1, _heap.ArenaStart + 4096);
        var zero = HeapPointer.Create(Generation, _heap.ZeroBase);
        HeapPointer[] batch = [.. Locals(5), other, staleGeneration, zero, HeapPointer.Null];

        Assert.Equal([other, staleGeneration], _roots.AddBatch(A, batch, Slot, Generation, _heap.ZeroBase));
        Assert.Equal([other, staleGeneration], _roots.AddBatch(A, batch, Slot, Generation, _heap.ZeroBase));   // rooting again changes nothing
        Assert.Null(_roots.AddBatch(B, [Local(4), zero, HeapPointer.Null], Slot, Generation, _heap.ZeroBase));  // all this node's: no list

        Assert.Equal(5, _roots.Count(A));
        Assert.False(_roots.Release(A, other.Value));
        Assert.True(_roots.Release(A, Local(3).Value));
        Assert.False(_roots.Release(A, Local(3).Value));
        Assert.True(_roots.Release(B, Local(4).Value));
        Assert.False(_roots.Release(B, Local(4).Value));
        Assert.Equal(4, _roots.Count(A));
    }

    [Fact]
    public void AFreeDropsEveryClientsRootOfItsObjectButNotARootTheNextMallocOfTheAddressTook()
    {
        _roots.AddBatch(A, Locals(4), Slot, Generation, _heap.ZeroBase);
        _roots.Add(B, Local(2).Value);                     // B rooted A's object too (the shell's root)
        long stamp = _roots.Stamp;                         // the free of Local(1) and Local(2) begins
        _roots.AddBatch(B, [Local(1)], Slot, Generation, _heap.ZeroBase);   // Local(1) freed and handed to B's malloc meanwhile

        _roots.Freed([Local(1), Local(2), Local(3)], [null, null, HeapError.InvalidArgument("not freed")], stamp);

        Assert.Equal(2, _roots.Count(A));                  // Local(3)'s free failed, Local(4) was not freed
        Assert.Equal(1, _roots.Count(B));                  // its fresh Local(1) stays rooted
        Assert.True(_roots.Release(B, Local(1).Value));
        Assert.False(_roots.Release(A, Local(1).Value));
        Assert.True(_roots.Release(A, Local(3).Value));
    }

    [Fact]
    public void APlanDropsClientsWhoseLeaseEndedAndNeverAClientThatNeverHeldOne()
    {
        var unleased = GrainId.Create("sys.client", "no-lease");
        _roots.AddBatch(A, Locals(3), Slot, Generation, _heap.ZeroBase);
        _roots.AddBatch(B, [Local(7)], Slot, Generation, _heap.ZeroBase);
        _roots.AddBatch(unleased, [Local(9), Local(10)], Slot, Generation, _heap.ZeroBase);

        Assert.Equal(0, _roots.Drop([A, B], [], dropUnknown: true));          // both named live: both hold leases
        Assert.Equal(1, _roots.Drop([B], [], dropUnknown: true));             // A's lease is gone, unknown to a new coordinator
        Assert.Equal(0, _roots.Count(A));
        Assert.Equal(2, _roots.Count(unleased));                              // never named live: never dropped
        Assert.Equal(1, _roots.Drop([], [B], dropUnknown: false));            // B's lease was seen to end
        Assert.Equal(0, _roots.Count(B));
        Assert.Equal(2, _roots.Count(unleased));
        Assert.Equal(1, _roots.Clients);                                      // clients without roots are forgotten
    }

    [Fact]
    public void RootingAndFreeingBatchesAllocateNothingOnTheManagedHeap()
    {
        HeapPointer[][] batches = [.. Enumerable.Range(0, 64).Select(b => Enumerable.Range(1 + 32 * b, 32).Select(Local).ToArray())];
        int r = 0;   // rounds so far, across calls
        void Churn(int rounds)
        {
            for (int end = r + rounds; r < end; r++)
            {
                HeapPointer[] batch = batches[r % batches.Length];
                _roots.AddBatch(r % 3 == 0 ? B : A, batch, Slot, Generation, _heap.ZeroBase);
                if (r >= 8) _roots.Freed(batches[(r - 8) % batches.Length], null, _roots.Stamp);   // eight batches live
            }
        }

        Churn(2_000);                 // first calls: JIT, the index and the root set reach their working size
        // Windows of 20 000 batches (640 000 objects rooted and freed) until one allocates nothing: the runtime's tier-up
        // allocates once on this thread at a time of its choosing; an allocation per object or per batch shows in every window.
        long allocated = -1;
        for (int window = 0; window < 5 && allocated != 0; window++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            Churn(20_000);
            allocated = GC.GetAllocatedBytesForCurrentThread() - before;
        }

        Assert.Equal(0, allocated);
        Assert.Equal(8 * 32, _roots.Count(A) + _roots.Count(B));
    }
}
