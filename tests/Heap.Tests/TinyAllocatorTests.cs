namespace ClusterHeap.Heap.Tests;

/// <summary>The tiny allocator: noscan objects under 16 bytes share 16-byte blocks with Go's alignment; frees are exact.</summary>
public unsafe class TinyAllocatorTests
{
    private static int GoTinyAlignment(int size) => (size & 7) == 0 ? 8 : (size & 3) == 0 ? 4 : (size & 1) == 0 ? 2 : 1;

    private static nuint BlockOf(nuint p) => p & ~(nuint)15;

    [Fact]
    public void TinyObjectsShareABlockWithGosAlignment()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(1);      // offset 0
        nuint b = c.Malloc(2);      // 2-aligned: offset 2
        nuint d = c.Malloc(4);      // 4-aligned: offset 4
        nuint e = c.Malloc(8);      // 8-aligned: offset 8, fills the block
        Assert.Equal(0, (long)a % 16);
        Assert.Equal(a + 2, b);
        Assert.Equal(a + 4, d);
        Assert.Equal(a + 8, e);
        nuint f = c.Malloc(3);      // no room: a new block
        Assert.NotEqual(BlockOf(a), BlockOf(f));
        nuint g = c.Malloc(12);     // 12 & 3 == 0: 4-aligned, offset 4 of f's block
        Assert.Equal(BlockOf(f) + 4, g);
        foreach (nuint p in new[] { a, b, d, e, f, g })
        {
            Assert.Equal(PointerError.None, heap.TryFindObject(p, out HeapObject o));
            Assert.True(o.Tiny);
            Assert.True(o.Noscan);
            Assert.Equal(SizeClasses.TinySizeClass, o.SizeClass);
        }
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AnOpenTinyBlockWithNothingLiveKeepsItsSixteenBytesInHeapAllocUntilItsOwnerClosesIt()
    {
        // What `clusterheap stats` shows after a stress run as "heap alloc 32 B" with 0 objects: two mcaches each
        // still hold an open tiny block (Go's c.tiny) whose objects were all freed. The block's slot stays allocated
        // while its owner may bump into it; it goes when the owner closes it (here: the cache is released).
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(5);
        Assert.Equal(PointerError.None, c.TryFree(a));
        MemStats open = heap.ReadMemStats();
        Assert.Equal(0, open.HeapObjects);
        Assert.Equal(SizeClasses.TinySize, open.HeapAlloc);
        heap.ReleaseCache(c);
        MemStats closed = heap.ReadMemStats();
        Assert.Equal(0, closed.HeapObjects);
        Assert.Equal(0, closed.HeapAlloc);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void RandomTinySizesAreAlignedDisjointAndStayInsideTheirBlock()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        var rng = new Random(7);
        var objects = new List<(nuint P, int Size)>();
        for (int i = 0; i < 20_000; i++)
        {
            int size = rng.Next(1, 16);
            nuint p = c.Malloc((nuint)size);
            Assert.True(TestHeap.AlignmentOf(p) >= GoTinyAlignment(size), $"size {size} at {TestHeap.Hex(p)}");
            Assert.Equal(BlockOf(p), BlockOf(p + (nuint)size - 1));
            Assert.True(TestHeap.AllBytesAre(p, size, 0));
            TestHeap.Fill(p, size, (byte)(i | 1));
            objects.Add((p, size));
        }
        objects.Sort((x, y) => x.P.CompareTo(y.P));
        for (int i = 1; i < objects.Count; i++)
        {
            Assert.True(objects[i - 1].P + (nuint)objects[i - 1].Size <= objects[i].P, $"tiny objects overlap at {TestHeap.Hex(objects[i].P)}");
        }
        TestHeap.AssertVerifies(heap);
        foreach ((nuint p, int _) in objects) heap.Free(p);
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.HeapObjects);
        Assert.Equal(0, s.HeapAlloc);
    }

    [Fact]
    public void FreeingEachTinyObjectWorksAndASecondFreeSaysTinyAlreadyFreed()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(1), b = c.Malloc(2), d = c.Malloc(4);
        foreach (nuint p in new[] { b, a, d })
        {
            Assert.Equal(PointerError.None, heap.TryFree(p));
            string before = TestHeap.Snapshot(heap.ReadMemStats());
            Assert.Equal(PointerError.TinyAlreadyFreed, heap.TryFree(p));
            InvalidPointerException ex = Assert.Throws<InvalidPointerException>(() => heap.Free(p));
            Assert.Equal(PointerError.TinyAlreadyFreed, ex.Reason);
            Assert.Contains("already freed", ex.Message, StringComparison.Ordinal);
            Assert.Contains(TestHeap.Hex(p), ex.Message, StringComparison.Ordinal);
            Assert.Equal(before, TestHeap.Snapshot(heap.ReadMemStats()));
        }
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AnOffsetWithNoTinyObjectIsTinyNotLive()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(1);      // offset 0
        c.Malloc(2);                // offset 2: offset 1 is alignment padding
        c.Malloc(8);                // offset 8: 4..7 are padding
        string before = TestHeap.Snapshot(heap.ReadMemStats());
        foreach (nuint p in new[] { a + 1, a + 5, a + 9 })
        {
            Assert.Equal(PointerError.TinyNotLive, heap.TryFree(p));
            Assert.Equal(PointerError.TinyNotLive, Assert.Throws<InvalidPointerException>(() => heap.Free(p)).Reason);
        }
        Assert.Equal(before, TestHeap.Snapshot(heap.ReadMemStats()));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AClosedBlocksSlotIsFreedWhenItsLastObjectGoes()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(8), b = c.Malloc(8);          // fills the block
        nuint next = c.Malloc(4);                          // opens a new block, closing a's
        Assert.NotEqual(BlockOf(a), BlockOf(next));
        MemStats s0 = heap.ReadMemStats();
        Assert.Equal(32, s0.HeapAlloc);                    // two blocks of 16 bytes
        Assert.Equal(3, s0.HeapObjects);

        heap.Free(a);
        Assert.Equal(32, heap.ReadMemStats().HeapAlloc);   // b still lives in the block
        heap.Free(b);
        MemStats s1 = heap.ReadMemStats();
        Assert.Equal(16, s1.HeapAlloc);                    // the block's slot went with its last object
        Assert.Equal(1, s1.HeapObjects);
        Assert.Equal(PointerError.TinyAlreadyFreed, heap.TryFree(a));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AnOpenBlockKeepsItsSlotUntilTheCacheClosesIt()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(4);
        heap.Free(a);
        Assert.Equal(16, heap.ReadMemStats().HeapAlloc);   // still open: the cache may bump into it
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
        heap.ReleaseCache(c);                               // closes it: nothing live, the slot goes
        Assert.Equal(0, heap.ReadMemStats().HeapAlloc);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AFullBlockDiesWithItsLastObjectWhileItsCacheStillHoldsIt()
    {
        // A full block is closed without a compare-and-swap: its cache just forgets it at the next block. Here another
        // thread's frees (the node heap's locked path) kill it first; the cache must then leave its slot alone.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(8), b = c.Malloc(8);            // the cache's current block, full
        var other = new Thread(() => { heap.Free(a); heap.Free(b); });
        other.Start();
        Assert.True(other.Join(TimeSpan.FromSeconds(30)));
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.HeapAlloc);                       // dead at once: nothing can be bumped into it
        Assert.Equal(0, s.HeapObjects);
        Assert.Equal(PointerError.TinyAlreadyFreed, heap.TryFree(b));
        TestHeap.AssertVerifies(heap);

        MSpan* span = TestHeap.SpanOf(heap, a);
        ulong* mask = &span->TinyMasks[(int)((BlockOf(a) - span->StartAddr) >> 4)];
        ulong tombstones = *mask;
        TestHeap.Fill(BlockOf(a), 16, 0x5A);
        nuint t = c.Malloc(4);                              // a new block; the forgotten one is not touched
        Assert.NotEqual(BlockOf(a), BlockOf(t));
        Assert.Equal(tombstones, *mask);
        Assert.True(TestHeap.AllBytesAre(BlockOf(a), 16, 0x5A), "the cache wrote into a block it had forgotten");
        Assert.Equal(1, heap.ReadMemStats().HeapObjects);
        Assert.Equal(0, heap.ReadMemStats().StackedObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AFullBlockKilledByItsOwnCachesFreesIsReopenedForTheNextTinyObject()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(8), b = c.Malloc(8);
        c.Free(b);
        c.Free(a);                                          // dies while still the cache's current block
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.HeapAlloc);
        Assert.Equal(1, s.StackedObjects);                  // its slot waits on the tiny class's free stack
        TestHeap.AssertVerifies(heap);
        Assert.Equal(a, c.Malloc(8));                       // the next block opens on that slot
        Assert.Equal(b, c.Malloc(8));
        Assert.Equal(2, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(8)]
    [InlineData(12)]
    [InlineData(15)]
    public void ScanObjectsUnder16BytesAreNotTiny(int size)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc((nuint)size, noscan: false);
        nuint q = c.Malloc((nuint)size, noscan: false);
        Assert.Equal(PointerError.None, heap.TryFindObject(p, out HeapObject o));
        Assert.False(o.Tiny);
        Assert.False(o.Noscan);
        Assert.Equal(SizeClasses.SizeOf(SizeClasses.ClassOf((nuint)size)), o.Size);
        Assert.Equal(o.Size, (long)(q - p));               // separate slots, not packed in a block
        Assert.Equal(PointerError.Interior, heap.TryFree(p + 1));
        heap.Free(p);
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(p));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AWriteThroughTheHeapCannotDirtyTheNextTinyObject()
    {
        // Write is bounds-checked against the object; for the last object of an open block the heap cannot know
        // its size, so whatever it allows must not show up in the next tiny object handed out from that block.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(1);
        byte[] junk = new byte[16];
        Array.Fill(junk, (byte)0xEE);
        PointerError e = heap.CheckRange(a, 16, out _);
        if (e == PointerError.None) heap.Write(a, junk);
        else Assert.Equal(PointerError.OutOfBounds, e);
        nuint b = c.Malloc(7);
        Assert.Equal(BlockOf(a), BlockOf(b));
        Assert.True(TestHeap.AllBytesAre(b, 7, 0), "a new tiny object holds bytes written through its neighbour");
    }

    [Fact]
    public void ATinyObjectsReadWriteBoundsAreItsOwnBytes()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(3);      // bytes 0..2
        nuint b = c.Malloc(4);      // bytes 4..7 (3 is padding)
        Assert.Equal(PointerError.None, heap.CheckRange(a, 3, out HeapObject o));
        Assert.Equal(3, o.Size);
        Assert.Equal(PointerError.OutOfBounds, heap.CheckRange(a, 4, out _));
        Assert.Equal(PointerError.TinyNotLive, heap.CheckRange(a + 3, 1, out _));
        Assert.Equal(PointerError.None, heap.CheckRange(b + 1, 3, out o));
        Assert.Equal(b, o.Base);
        Assert.Equal(PointerError.OutOfBounds, heap.CheckRange(b, 5, out _));
        heap.Free(a);
        Assert.Equal(PointerError.TinyNotLive, heap.CheckRange(a + 1, 1, out _));
        Assert.Equal(PointerError.None, heap.CheckRange(b, 4, out _));
    }

    [Fact]
    public void APlain16ByteObjectInASlotThatOnceHeldTinyObjectsSaysAlreadyFreedOnASecondFree()
    {
        // Plain 16-byte noscan objects share the span class of tiny blocks; a slot's old tiny bookkeeping must not
        // leak into the verdict about the plain object that lives there now.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(8), b = c.Malloc(8);               // one full tiny block
        c.Malloc(8);                                           // next block: a's block is closed
        heap.Free(a);
        heap.Free(b);                                          // the block's slot is free now
        heap.ReleaseCache(c);
        MCache c2 = heap.CreateCache();
        nuint p = 0;
        for (int i = 0; i < 1000 && p != a; i++) p = c2.Malloc(16);
        Assert.Equal(a, p);
        heap.Free(p);
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(p));
        TestHeap.AssertVerifies(heap);
    }
}
