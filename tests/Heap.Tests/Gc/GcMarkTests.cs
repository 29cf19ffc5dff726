namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>The mark phase's rules, one case each: what keeps an object alive and what a word that leads nowhere does.</summary>
public unsafe class GcMarkTests
{
    private static readonly ulong[] TwoPointers = [0b11];

    [Fact]
    public void An_interior_pointer_keeps_its_object_alive()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint a = c.Malloc(100, noscan: true);
        nuint b = c.Malloc(100, noscan: true);
        roots.Add((ulong)a + 57);
        GcCycle cycle = heap.Collect();
        heap.FinishSweep();
        Assert.Equal(1, cycle.Counts.Interior);
        Assert.Equal(PointerError.None, heap.TryFindObject(a, out _));
        Assert.NotEqual(PointerError.None, heap.TryFindObject(b, out _));
        Assert.Equal(1, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void A_word_naming_a_freed_object_is_counted_dangling_and_not_followed()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint holder = c.MallocTyped(16, TwoPointers);
        nuint gone = c.MallocTyped(16, TwoPointers);
        ((ulong*)holder)[0] = gone;
        c.Free(gone);                                   // onto the free stack: the slot stays allocated, the object does not
        roots.Add(holder);
        GcCycle cycle = heap.Collect();
        heap.FinishSweep();
        Assert.Equal(1, cycle.Counts.Dangling);
        Assert.Equal(1, cycle.Counts.Objects);
        Assert.Equal(PointerError.None, heap.TryFindObject(holder, out _));
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(gone));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void Foreign_words_other_generations_and_free_pages_lead_nowhere()
    {
        using NodeHeap heap = TestHeap.Create();
        heap.PointerGeneration = 3;
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint a = c.Malloc(64, noscan: false);
        nuint b = c.Malloc(64, noscan: false);
        roots.Add(0x0000_7f00_0000_1000);                              // outside the arena: foreign
        roots.Add((7UL << 48) | a);                                      // this slot, another generation: node gone
        roots.Add((3UL << 48) | b);                                      // this generation: b lives
        roots.Add((ulong)heap.ArenaUsed - 8);                            // mapped, but no object there
        GcCycle cycle = heap.Collect();
        heap.FinishSweep();
        Assert.Equal(1, cycle.Counts.Foreign);
        Assert.Equal(2, cycle.Counts.Dangling);
        Assert.NotEqual(PointerError.None, heap.TryFindObject(a, out _));
        Assert.Equal(PointerError.None, heap.TryFindObject(b, out _));
    }

    [Fact]
    public void A_noscan_object_is_marked_but_its_words_are_never_followed()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint plain = c.Malloc(32, noscan: true);
        nuint target = c.Malloc(32, noscan: true);
        *(ulong*)plain = target;                         // looks like a pointer; the bitmap says scalar
        roots.Add(plain);
        GcCycle cycle = heap.Collect();
        heap.FinishSweep();
        Assert.Equal(0, cycle.Counts.ScannedObjects);
        Assert.Equal(1, cycle.Counts.Objects);
        Assert.Equal(PointerError.None, heap.TryFindObject(plain, out _));
        Assert.NotEqual(PointerError.None, heap.TryFindObject(target, out _));
    }

    [Fact]
    public void Only_the_words_the_bitmap_calls_pointers_are_followed()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint obj = c.MallocTyped(32, [0b0100]);          // word 2 is the only pointer
        nuint viaScalar = c.Malloc(48, noscan: true);
        nuint viaPointer = c.Malloc(48, noscan: true);
        ((ulong*)obj)[1] = viaScalar;
        ((ulong*)obj)[2] = viaPointer;
        roots.Add(obj);
        heap.Collect();
        heap.FinishSweep();
        Assert.NotEqual(PointerError.None, heap.TryFindObject(viaScalar, out _));
        Assert.Equal(PointerError.None, heap.TryFindObject(viaPointer, out _));
    }

    [Fact]
    public void A_pointer_to_a_tiny_object_keeps_its_whole_block_and_one_into_padding_keeps_nothing()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint x = c.Malloc(3, noscan: true);                // block 1: x at 0, y at 4 (4-byte alignment)
        nuint y = c.Malloc(4, noscan: true);
        Assert.Equal(x + 4, y);
        int h = roots.Add(y);
        heap.Collect();
        heap.FinishSweep();
        Assert.Equal(PointerError.None, heap.CheckRange(x, 3, out _));    // a block mate lives with y
        Assert.Equal(2, heap.ReadMemStats().HeapObjects);
        roots[h] = x + 3;                                    // padding between x and y
        GcCycle cycle = heap.Collect();
        heap.FinishSweep();
        Assert.Equal(1, cycle.Counts.Dangling);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
        Assert.Equal(PointerError.NotInUse, heap.TryFree(y));       // the block's span had nothing live: back to mheap
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void An_unreachable_cycle_is_reclaimed()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint a = c.MallocTyped(16, TwoPointers), b = c.MallocTyped(16, TwoPointers), d = c.MallocTyped(16, TwoPointers);
        ((ulong*)a)[0] = b;
        ((ulong*)b)[0] = d;
        ((ulong*)d)[0] = a;
        int h = roots.Add(a);
        Assert.Equal(3, heap.Collect().Counts.Objects);
        roots.Remove(h);
        Assert.Equal(0, heap.Collect().Counts.Objects);
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
        Assert.Equal(3, heap.ReadMemStats().GcFrees);
    }

    [Fact]
    public void An_unreached_large_object_gives_its_pages_back_to_mheap()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint big = c.Malloc(1 << 20, noscan: false);
        long inuse = heap.ReadMemStats().HeapInuse;
        heap.Collect();
        Assert.True(heap.ReadMemStats().SweepPending || heap.ReadMemStats().HeapInuse < inuse);
        heap.FinishSweep();
        MemStats s = heap.ReadMemStats();
        Assert.Equal(inuse - (1 << 20), s.HeapInuse);
        Assert.Equal(0, s.LargeObjects);
        Assert.Equal(PointerError.NotInUse, heap.TryFree(big));
        TestHeap.AssertVerifies(heap);
    }
}
