using ClusterHeap.Contracts;
using ClusterHeap.Grains.Gc;
using ClusterHeap.Heap;
using Orleans.Runtime;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// A free's root drop racing a malloc of the same address by the same client (Gc/ClientRoots.cs), on a real node heap
/// and its collector. In a cluster: a free on one P of an object whose span waits to be swept gives the slot to mcentral
/// at once; another P's refill sweeps that span and hands the slot to the same client's next malloc, which roots it —
/// all before the free's call drops the freed object's roots (GcGateFilter runs that step after the free returns). The
/// client's root of the old object is still there then, so the malloc's root must become newer than the free's stamp:
/// otherwise the free drops the root of the new object, the next cycle sweeps it while the client holds it, and the slot
/// is handed out twice (the stress run's cookie failures at one address, over and over).
/// </summary>
public sealed class FreeRacingMallocRootTests : IDisposable
{
    private const ushort Generation = 3;
    private static readonly GrainId A = GrainId.Create("sys.client", "a");

    private readonly NodeHeap _heap = NodeHeap.Create(new HeapOptions { ArenaSize = 64L << 20, Slot = 12 });
    private readonly ClientRoots _roots;
    private readonly MCache _cache;

    public FreeRacingMallocRootTests()
    {
        _heap.PointerGeneration = Generation;
        _roots = new ClientRoots(_heap);
        _cache = _heap.CreateCache();
    }

    public void Dispose() => _heap.Dispose();

    private int Slot => HeapPointer.SlotOf(_heap.ArenaStart);

    private HeapPointer Malloc()
    {
        var p = HeapPointer.Create(Generation, (ulong)_cache.Malloc(600, noscan: true));
        _roots.AddBatch(A, [p], Slot, Generation, _heap.ZeroBase);
        return p;
    }

    [Fact]
    public void AFreeDoesNotDropTheRootTheSameClientsNextMallocOfTheAddressTook()
    {
        HeapPointer old = Malloc();
        long stamp = _roots.Stamp;                                   // the free of old begins
        Assert.Equal(PointerError.None, _cache.TryFree((nuint)old.Address));
        HeapPointer fresh = Malloc();                                // the slot handed to the same client meanwhile
        Assert.Equal(old, fresh);

        _roots.Freed([old], null, stamp);                            // the free's root drop comes last

        Assert.Equal(1, _roots.Count(A));
        _heap.Collect();
        _heap.FinishSweep();
        // Rooted, so marked and kept: the client can still free it (a swept object would say it was freed already).
        Assert.Equal(PointerError.None, _cache.TryFree((nuint)fresh.Address));
    }

    [Fact]
    public void AFreeThatStartsAfterTheMallocDropsItsRoot()
    {
        HeapPointer old = Malloc();
        Assert.Equal(PointerError.None, _cache.TryFree((nuint)old.Address));
        HeapPointer fresh = Malloc();                                // re-rooted before old's free dropped anything
        Assert.Equal(old, fresh);
        long stamp = _roots.Stamp;                                   // the free of fresh begins after that malloc
        Assert.Equal(PointerError.None, _cache.TryFree((nuint)fresh.Address));

        _roots.Freed([fresh], null, stamp);

        Assert.Equal(0, _roots.Count(A));
    }
}
