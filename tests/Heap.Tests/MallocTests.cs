namespace ClusterHeap.Heap.Tests;

/// <summary>mallocgc: every class and the boundaries land in a span of the right class, aligned, in the arena, zeroed.</summary>
public unsafe class MallocTests
{
    public static TheoryData<int> SmallClasses()
    {
        var data = new TheoryData<int>();
        for (int c = 1; c < SizeClasses.NumClasses; c++) data.Add(c);
        return data;
    }

    /// <summary>Object starts are multiples of the class size from a page-aligned span: 16-aligned when the size is a multiple of 16, else 8.</summary>
    private static int ExpectedAlignment(int classSize) => classSize % 16 == 0 ? 16 : 8;

    private static void AssertSmallObject(NodeHeap heap, nuint p, long requested, bool noscan)
    {
        int expectedClass = SizeClasses.ClassOf((nuint)requested);
        int classSize = SizeClasses.SizeOf(expectedClass);
        Assert.True(p >= heap.ArenaStart && p < heap.ArenaUsed, $"{TestHeap.Hex(p)} outside the grown arena");
        Assert.Equal(PointerError.None, heap.TryFindObject(p, out HeapObject obj));
        Assert.Equal(p, obj.Base);
        Assert.Equal(expectedClass, obj.SizeClass);
        Assert.Equal(classSize, obj.Size);
        Assert.Equal(noscan, obj.Noscan);
        Assert.False(obj.Tiny);
        Assert.True(TestHeap.AlignmentOf(p) >= ExpectedAlignment(classSize), $"{TestHeap.Hex(p)} for class size {classSize}");
        SpanInfo span = heap.GetSpans(expectedClass).Single(s => p >= s.Start && p < s.Start + (nuint)(s.Pages * HeapConstants.PageSize) && s.Noscan == noscan);
        Assert.Equal(SizeClasses.PagesOf(expectedClass), span.Pages);
        Assert.Equal(classSize, span.ElemSize);
        Assert.Equal(0, (long)(p - span.Start) % classSize);
        Assert.True(TestHeap.AllBytesAre(p, classSize, 0), "fresh object not zeroed");
    }

    [Theory]
    [MemberData(nameof(SmallClasses))]
    public void EverySizeClassAllocatesAlignedZeroedSlotsInASpanOfThatClass(int sizeClass)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        int size = SizeClasses.SizeOf(sizeClass);
        int prev = sizeClass == 1 ? 0 : SizeClasses.SizeOf(sizeClass - 1);
        foreach (bool noscan in new[] { false, true })
        {
            if (noscan && size < SizeClasses.TinySize) continue;   // tiny allocator, see TinyAllocatorTests
            // The class size itself and the smallest size that maps to it.
            foreach (int request in new[] { size, prev + 1 })
            {
                if (noscan && request < SizeClasses.TinySize) continue;
                nuint p = c.Malloc((nuint)request, noscan);
                AssertSmallObject(heap, p, request, noscan);
            }
        }
        TestHeap.AssertVerifies(heap);
    }

    [Theory]
    [InlineData(1, 8)]
    [InlineData(8, 8)]
    [InlineData(15, 16)]
    [InlineData(16, 16)]
    [InlineData(17, 24)]
    [InlineData(1016, 1024)]
    [InlineData(1017, 1024)]
    [InlineData(1024, 1024)]
    [InlineData(1025, 1152)]
    [InlineData(32768, 32768)]
    public void BoundarySizesGetTheirGoClass(int request, int classSize)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc((nuint)request, noscan: false);   // scan, so even 1..15 take a real slot
        AssertSmallObject(heap, p, request, noscan: false);
        Assert.Equal(classSize, SizeClasses.SizeOf(SizeClasses.ClassOf((nuint)request)));
        if (request >= SizeClasses.TinySize)
        {
            nuint q = c.Malloc((nuint)request, noscan: true);
            AssertSmallObject(heap, q, request, noscan: true);
        }
        TestHeap.AssertVerifies(heap);
    }

    [Theory]
    [InlineData(32769)]
    [InlineData(40000)]
    [InlineData(1 << 20)]
    [InlineData(3 * (1 << 20) + 1)]
    public void LargeObjectsOwnASpanOfTheirPages(int size)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        long pages = (size + HeapConstants.PageSize - 1) / HeapConstants.PageSize;
        foreach (bool noscan in new[] { true, false })
        {
            nuint p = c.Malloc((nuint)size, noscan);
            Assert.Equal(0, (long)p % HeapConstants.PageSize);
            Assert.Equal(PointerError.None, heap.TryFindObject(p, out HeapObject obj));
            Assert.Equal(0, obj.SizeClass);
            Assert.Equal(pages * HeapConstants.PageSize, obj.Size);
            SpanInfo span = heap.GetSpans(0).Single(s => s.Start == p);
            Assert.Equal(pages, span.Pages);
            Assert.Equal(1, span.Objects);
            Assert.Equal(1, span.Live);
            Assert.Equal(noscan, span.Noscan);
            Assert.True(TestHeap.AllBytesAre(p, pages * HeapConstants.PageSize, 0));
            // Its last byte belongs to it, the byte after does not.
            Assert.Equal(PointerError.None, heap.CheckRange(p + (nuint)size - 1, 1, out _));
        }
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void SizeZeroReturnsTheZeroBaseEveryTimeAndFreeingItIsANoOp()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        string before = TestHeap.Snapshot(heap.ReadMemStats());
        Assert.Equal(heap.ZeroBase, c.Malloc(0));
        Assert.Equal(heap.ZeroBase, c.Malloc(0, noscan: false));
        Assert.Equal(heap.ZeroBase, c.MallocTyped(0, [1]));
        Assert.NotEqual((nuint)0, heap.ZeroBase);
        Assert.Equal(PointerError.None, heap.TryFree(heap.ZeroBase));
        heap.Free(heap.ZeroBase);
        heap.Free(heap.ZeroBase);
        Assert.Equal(before, TestHeap.Snapshot(heap.ReadMemStats()));
        Assert.Equal(heap.ArenaStart, heap.ArenaUsed);
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>Allocates <paramref name="size"/> until <paramref name="target"/> comes back; the others stay live.</summary>
    private static nuint AllocateUntil(MCache c, nuint target, int size, bool noscan, bool needzero, List<nuint> others)
    {
        for (int i = 0; i < 100_000; i++)
        {
            nuint p = c.Malloc((nuint)size, noscan, needzero);
            if (p == target) return p;
            others.Add(p);
        }
        Assert.Fail($"slot {TestHeap.Hex(target)} never came back");
        return 0;
    }

    [Theory]
    [InlineData(16, true)]
    [InlineData(48, false)]
    [InlineData(1024, true)]
    [InlineData(32768, false)]
    public void ReusedSlotsComeBackZeroedWhetherFreedWhileCachedOrNot(int size, bool noscan)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        var others = new List<nuint>();

        // 1) Freed while the span is in this mcache: folded in at the next refill, then handed out again.
        nuint p = c.Malloc((nuint)size, noscan);
        TestHeap.Fill(p, size, 0xFF);
        heap.Free(p);
        Assert.Equal(p, AllocateUntil(c, p, size, noscan, needzero: true, others));
        Assert.True(TestHeap.AllBytesAre(p, size, 0), "reused slot (freed while cached) was not zeroed");

        // 2) Freed into an uncached span: the owner gave its spans back first.
        TestHeap.Fill(p, size, 0xAB);
        heap.ReleaseCache(c);
        heap.Free(p);
        MCache c2 = heap.CreateCache();
        Assert.Equal(p, AllocateUntil(c2, p, size, noscan, needzero: true, others));
        Assert.True(TestHeap.AllBytesAre(p, size, 0), "reused slot (freed uncached) was not zeroed");
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void NeedzeroFalseLeavesAReusedSlotsOldBytesButFreshPagesAreZeroAnyway()
    {
        // What is checked: needzero:false only skips the clearing of a slot that held data; it never makes
        // fresh memory non-zero, and needzero:true after it clears again.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        var others = new List<nuint>();
        nuint fresh = c.Malloc(64, needzero: false);
        Assert.True(TestHeap.AllBytesAre(fresh, 64, 0));
        TestHeap.Fill(fresh, 64, 0xFF);
        heap.Free(fresh);
        Assert.Equal(fresh, AllocateUntil(c, fresh, 64, noscan: true, needzero: false, others));
        Assert.True(TestHeap.AllBytesAre(fresh, 64, 0xFF), "needzero:false cleared the slot anyway");
        heap.Free(fresh);
        Assert.Equal(fresh, AllocateUntil(c, fresh, 64, noscan: true, needzero: true, others));
        Assert.True(TestHeap.AllBytesAre(fresh, 64, 0));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ALargeObjectsPagesComeBackZeroedAfterReuse()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        const int size = 256 << 10;
        nuint p = c.Malloc(size);
        TestHeap.Fill(p, size, 0xFF);
        heap.Free(p);
        nuint q = c.Malloc(size);
        Assert.Equal(p, q);     // best fit, lowest address: the same run
        Assert.True(TestHeap.AllBytesAre(q, size, 0));
        // A small span carved from those pages is zeroed too.
        heap.Free(q);
        nuint s = c.Malloc(8192, noscan: false);
        Assert.True(s >= p && s < p + size);
        Assert.True(TestHeap.AllBytesAre(s, 8192, 0));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ManyObjectsOfOneClassNeverOverlapAndEachFindsItself()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        var seen = new HashSet<nuint>();
        for (int i = 0; i < 5000; i++)
        {
            nuint p = c.Malloc(48);
            Assert.True(seen.Add(p), $"{TestHeap.Hex(p)} handed out twice");
            Assert.Equal(PointerError.None, heap.TryFindObject(p, out _));
        }
        nuint[] sorted = seen.Order().ToArray();
        for (int i = 1; i < sorted.Length; i++) Assert.True(sorted[i] - sorted[i - 1] >= 48);
        TestHeap.AssertVerifies(heap);
    }
}
