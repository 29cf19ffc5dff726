namespace ClusterHeap.Heap.Tests;

/// <summary>Free, Read and Write refuse every pointer that is not a live object's start (or range), precisely, and change nothing.</summary>
public unsafe class FreeValidationTests
{
    /// <summary>TryFree gives <paramref name="expected"/>; Free throws it with a readable message; stats and verifier unchanged.</summary>
    private static void AssertRefused(NodeHeap heap, nuint p, PointerError expected, string phrase)
    {
        TestHeap.AssertVerifies(heap);
        string before = TestHeap.Snapshot(heap.ReadMemStats());
        IReadOnlyList<SpanInfo> spansBefore = heap.GetSpans();
        Assert.Equal(expected, heap.TryFree(p));
        InvalidPointerException e = Assert.Throws<InvalidPointerException>(() => heap.Free(p));
        Assert.Equal(expected, e.Reason);
        Assert.Equal((ulong)p, e.Address);
        Assert.Contains(TestHeap.Hex(p), e.Message, StringComparison.Ordinal);
        Assert.Contains(phrase, e.Message, StringComparison.Ordinal);
        Assert.Equal(before, TestHeap.Snapshot(heap.ReadMemStats()));
        Assert.Equal(spansBefore, heap.GetSpans());
        TestHeap.AssertVerifies(heap);
    }

    [Theory]
    [InlineData(32, false)]
    [InlineData(48, true)]
    [InlineData(1024, false)]
    [InlineData(40000, true)]
    public void AnInteriorPointerIsRefusedAsInterior(int size, bool noscan)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc((nuint)size, noscan);
        foreach (nuint q in new[] { p + 8, p + 1, p + (nuint)size - 1 })
        {
            AssertRefused(heap, q, PointerError.Interior, "points inside an object");
        }
        heap.Free(p);
    }

    [Fact]
    public void ForeignPointersAreRefusedAsOutsideArena()
    {
        using NodeHeap heap = TestHeap.Create();
        using NodeHeap other = TestHeap.Create(slot: 11);
        MCache c = heap.CreateCache();
        MCache oc = other.CreateCache();
        c.Malloc(64);
        nuint theirs = oc.Malloc(64);
        int onStack = 0;
        foreach (nuint p in new[] { (nuint)0, theirs, (nuint)(&onStack), heap.ArenaStart - 8, heap.ArenaEnd, nuint.MaxValue })
        {
            AssertRefused(heap, p, PointerError.OutsideArena, "not inside this node's arena");
        }
        Assert.Equal(PointerError.OutsideArena, heap.CheckRange(theirs, 8, out _));
        Assert.Equal(PointerError.None, other.TryFindObject(theirs, out _));   // still live over there
    }

    [Fact]
    public void ASecondFreeIsRefusedAsAlreadyFreedCachedOrNot()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(64);
        nuint p = c.Malloc(64);
        heap.Free(p);                                                      // freed while cached
        AssertRefused(heap, p, PointerError.AlreadyFreed, "already freed");
        heap.ReleaseCache(c);                                              // folded into the span
        AssertRefused(heap, p, PointerError.AlreadyFreed, "already freed");
        Assert.Equal(PointerError.AlreadyFreed, heap.CheckRange(p, 1, out _));
        heap.Free(keep);
    }

    [Fact]
    public void ASlotNeverHandedOutIsRefusedAsNeverAllocated()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        AssertRefused(heap, p + 64 * 5, PointerError.NeverAllocated, "no object was ever allocated");
        heap.ReleaseCache(c);
        AssertRefused(heap, p + 64 * 5, PointerError.NeverAllocated, "no object was ever allocated");
    }

    [Fact]
    public void PagesNeverGrownIntoOrFreeAreRefusedAsNotInUse()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        AssertRefused(heap, heap.ArenaUsed, PointerError.NotInUse, "hold no objects");                  // never grown into
        AssertRefused(heap, heap.ArenaEnd - 8, PointerError.NotInUse, "hold no objects");
        SpanInfo free = heap.GetSpans().First(s => !s.InUse);                                              // grown but free
        AssertRefused(heap, free.Start, PointerError.NotInUse, "hold no objects");
        AssertRefused(heap, free.Start + 4096, PointerError.NotInUse, "hold no objects");
        heap.Free(p);
    }

    [Fact]
    public void TheTailWasteOfASpanIsRefusedAsNotInUse()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        int cls = SizeClasses.ClassOf(48);
        Assert.True(SizeClasses.Table[cls - 1].TailWaste > 0);
        nuint p = c.Malloc(48);
        SpanInfo span = heap.GetSpans(cls).Single();
        nuint tail = span.Start + (nuint)(span.Objects * span.ElemSize);
        Assert.True(tail < span.Start + (nuint)(span.Pages * HeapConstants.PageSize));
        AssertRefused(heap, tail, PointerError.NotInUse, "hold no objects");
        Assert.Equal(PointerError.NotInUse, heap.CheckRange(tail, 1, out _));
        heap.Free(p);
    }

    [Fact]
    public void ADoubleFreeOfALargeObjectIsRefusedAndChangesNothing()
    {
        // The large object's pages went back to mheap with the first free, so the second finds free pages.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(100_000);
        nuint p = c.Malloc(100_000);
        heap.Free(p);
        AssertRefused(heap, p, PointerError.NotInUse, "hold no objects");
        heap.Free(keep);
    }

    [Fact]
    public void ReadWriteAndCheckRangeAcceptInBoundsRangesOnly()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(40, noscan: false);                 // class 48
        byte[] data = [1, 2, 3, 4, 5, 6, 7, 8];
        heap.Write(p + 40, data);                               // inside the 48-byte slot
        byte[] back = new byte[8];
        heap.Read(p + 40, back);
        Assert.Equal(data, back);
        Assert.Equal(PointerError.None, heap.CheckRange(p, 48, out HeapObject o));
        Assert.Equal(p, o.Base);
        Assert.Equal(PointerError.None, heap.CheckRange(p + 47, 1, out _));
        Assert.Equal(PointerError.None, heap.CheckRange(p + 48 - 1, 0, out _));
        Assert.Equal(PointerError.OutOfBounds, heap.CheckRange(p, 49, out _));
        Assert.Equal(PointerError.OutOfBounds, heap.CheckRange(p + 41, 8, out _));
        Assert.Equal(PointerError.BadLength, heap.CheckRange(p, -1, out _));
        Assert.Equal(PointerError.BadLength, heap.CheckRange(p, long.MinValue, out _));
        InvalidPointerException e = Assert.Throws<InvalidPointerException>(() => heap.Write(p + 41, data));
        Assert.Equal(PointerError.OutOfBounds, e.Reason);
        Assert.Contains("runs past the end", e.Message, StringComparison.Ordinal);
        Assert.Equal(PointerError.OutOfBounds, Assert.Throws<InvalidPointerException>(() => heap.Read(p, new byte[100])).Reason);
        Assert.True(TestHeap.AllBytesAre(p, 40, 0));            // the refused write wrote nothing
        Assert.Equal(PointerError.OutsideArena, Assert.Throws<InvalidPointerException>(() => heap.Read(0, new byte[1])).Reason);
        nuint l = c.Malloc(40000);
        Assert.Equal(PointerError.None, heap.CheckRange(l + 40000 - 8, 8, out _));
        Assert.Equal(PointerError.OutOfBounds, heap.CheckRange(l, 5 * HeapConstants.PageSize + 1, out _));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void PoisonOnFreeFillsTheFreedObject()
    {
        using NodeHeap heap = TestHeap.Create(poison: true);
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(64);
        nuint p = c.Malloc(64);
        heap.Free(p);
        Assert.True(TestHeap.AllBytesAre(p, 64, NodeHeap.PoisonByte));
        Assert.True(TestHeap.AllBytesAre(keep, 64, 0));
        TestHeap.AssertVerifies(heap);
    }
}
