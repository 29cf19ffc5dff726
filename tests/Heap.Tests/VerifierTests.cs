namespace ClusterHeap.Heap.Tests;

/// <summary>
/// The verifier is clean after every kind of operation, and it fires: each broken control corrupts one invariant
/// through internals, asserts the report names it with the address, then restores and sees the heap clean again.
/// </summary>
public unsafe class VerifierTests
{
    [Fact]
    public void VerifyIsCleanAfterEveryKindOfOperation()
    {
        using NodeHeap heap = TestHeap.Create();
        TestHeap.AssertVerifies(heap);                              // empty
        MCache c = heap.CreateCache();
        nuint tiny = c.Malloc(5); TestHeap.AssertVerifies(heap);
        nuint small = c.Malloc(80); TestHeap.AssertVerifies(heap);
        nuint scan = c.Malloc(80, noscan: false); TestHeap.AssertVerifies(heap);
        nuint typed = c.MallocTyped(96, [0b10]); TestHeap.AssertVerifies(heap);
        nuint large = c.Malloc(70_000); TestHeap.AssertVerifies(heap);
        heap.Free(tiny); TestHeap.AssertVerifies(heap);
        heap.Free(small); TestHeap.AssertVerifies(heap);            // freed while cached
        heap.ReleaseCache(c); TestHeap.AssertVerifies(heap);        // folded
        heap.Free(scan); TestHeap.AssertVerifies(heap);             // uncached free
        heap.Free(large); TestHeap.AssertVerifies(heap);
        heap.Scavenge(force: true); TestHeap.AssertVerifies(heap);
        SpanLease? lease = heap.LendSpan(SizeClasses.ClassOf(96) << 1, TestHeap.Lessee); TestHeap.AssertVerifies(heap);
        heap.ReturnLease(lease!.LeaseId, lease.FreeSlots); TestHeap.AssertVerifies(heap);
        heap.Free(typed); TestHeap.AssertVerifies(heap);
        VerifyReport r = heap.Verify();
        Assert.Equal(0, r.Objects);
        Assert.StartsWith("ok:", r.ToString(), StringComparison.Ordinal);
    }

    private static void AssertBroken(NodeHeap heap, params string[] phrases)
    {
        VerifyReport r = heap.Verify();
        Assert.False(r.Ok, "the verifier missed a deliberately broken invariant");
        Assert.StartsWith("BROKEN: ", r.ToString(), StringComparison.Ordinal);
        foreach (string p in phrases) Assert.Contains(p, r.Problem, StringComparison.Ordinal);
    }

    [Fact]
    public void ABoundaryBitInsideAnObjectIsReportedWithItsAddress()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        HeapBitmap bm = TestHeap.Bitmap(heap);
        byte old = bm.Get(p + 16);
        bm.Set(p + 16, HeapBitmap.Boundary);
        AssertBroken(heap, TestHeap.Hex(p + 16), "boundary bit");
        bm.Set(p + 16, old);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AMissingBoundaryBitOfALiveObjectIsReportedWithItsAddress()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        nuint q = c.Malloc(64);
        HeapBitmap bm = TestHeap.Bitmap(heap);
        byte old = bm.Get(q);
        bm.Set(q, 0);
        AssertBroken(heap, $"slot {TestHeap.Hex(q)}", "boundary bit clear but the slot holds a live object");
        bm.Set(q, old);
        TestHeap.AssertVerifies(heap);
        Assert.NotEqual(p, q);
    }

    [Fact]
    public void AWrongAllocCountIsReportedWithTheSpan()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        MSpan* s = TestHeap.SpanOf(heap, p);
        s->AllocCount++;
        AssertBroken(heap, $"span {TestHeap.Hex(s->StartAddr)}", "allocCount 2 but 1 alloc bits set");
        s->AllocCount--;
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ABitmapBitInAFreeRunIsReported()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        c.Malloc(64);
        SpanInfo free = heap.GetSpans().First(s => !s.InUse);
        nuint word = free.Start + 4096;
        HeapBitmap bm = TestHeap.Bitmap(heap);
        bm.Set(word, HeapBitmap.Freed);
        AssertBroken(heap, $"free run {TestHeap.Hex(free.Start)}", "bitmap not clear");
        bm.Set(word, 0);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ASpansArrayEntryPointingElsewhereIsReported()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(20_000);                              // class spanning several pages
        nuint q = c.Malloc(64);
        MSpan* s = TestHeap.SpanOf(heap, p);
        Assert.True(s->NPages > 1);
        var spans = (MSpan**)heap.Layout.SpansStart;
        nuint index = (s->StartAddr - heap.ArenaStart) / HeapConstants.PageSize + 1;
        MSpan* old = spans[index];
        spans[index] = TestHeap.SpanOf(heap, q);
        AssertBroken(heap, $"page {TestHeap.Hex(s->StartAddr + HeapConstants.PageSize)}", "maps elsewhere");
        spans[index] = old;
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AStatsCounterOffByOneIsReported()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        c.Malloc(64);
        c.SlotAllocs[SizeClasses.ClassOf(64)]++;               // a malloc counted that never happened
        AssertBroken(heap, "HeapObjects", "but the heap holds 1 live objects");
        c.SlotAllocs[SizeClasses.ClassOf(64)]--;
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AnUnfoldedFreeOnAnUncachedSpanIsReported()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        c.Malloc(64);
        heap.ReleaseCache(c);
        MSpan* s = TestHeap.SpanOf(heap, p);
        s->FreedBits[0] |= 1;
        s->FreedCount++;
        AssertBroken(heap, $"uncached span {TestHeap.Hex(s->StartAddr)}", "unfolded frees");
        s->FreedBits[0] &= ~1UL;
        s->FreedCount--;
        TestHeap.AssertVerifies(heap);
    }

    private static ulong* MaskOf(NodeHeap heap, nuint p)
    {
        MSpan* s = TestHeap.SpanOf(heap, p);
        return &s->TinyMasks[(int)(((p & ~(nuint)15) - s->StartAddr) >> 4)];
    }

    [Fact]
    public void AnOpenTinyBlockThatNoMCacheBumpsIntoIsReported()
    {
        // A block left open with no cache behind it can never die: its slot would leak.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint twelve = c.Malloc(12);
        nuint eight = c.Malloc(8);                          // no room after 12 bytes: a new block; the old one is closed
        Assert.NotEqual(twelve & ~(nuint)15, eight & ~(nuint)15);
        ulong* mask = MaskOf(heap, twelve);
        ulong old = *mask;
        *mask = old | TinyBlock.Open;
        AssertBroken(heap, TestHeap.Hex(twelve), "is open but no mcache bumps into it");
        *mask = old;
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AnMCachesOpenTinyBlockThatIsNotOpenIsReported()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(4);
        ulong* mask = MaskOf(heap, p);
        ulong old = *mask;
        *mask = old & ~TinyBlock.Open;
        AssertBroken(heap, TestHeap.Hex(p), "an mcache bumps into tiny block", "not an open tiny block");
        *mask = old | (1UL << 16 + 9);                      // an object ending at byte 9, past the cache's offset 4
        AssertBroken(heap, TestHeap.Hex(p), "its objects end at byte 10 but its mcache bumps from 4");
        *mask = old;
        TestHeap.AssertVerifies(heap);
    }
}
