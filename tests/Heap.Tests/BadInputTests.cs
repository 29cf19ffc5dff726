namespace ClusterHeap.Heap.Tests;

/// <summary>Absurd sizes, an exhausted arena and the growth limit: clear errors, and the heap stays whole.</summary>
public unsafe class BadInputTests
{
    private const long MiB = 1L << 20;

    [Fact]
    public void ASizeLargerThanTheArenaIsInvalidSize()
    {
        using NodeHeap heap = TestHeap.Create(arena: 64 * MiB);
        MCache c = heap.CreateCache();
        foreach (nuint size in new[] { (nuint)(64 * MiB + 1), (nuint)1 << 40, nuint.MaxValue, nuint.MaxValue - 8191 })
        {
            InvalidSizeException e = Assert.Throws<InvalidSizeException>(() => c.Malloc(size));
            Assert.Contains("larger than the whole", e.Message, StringComparison.Ordinal);
            Assert.Throws<InvalidSizeException>(() => c.MallocTyped(size, [1]));
        }
        Assert.Equal(0, heap.ReadMemStats().Mallocs);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ExhaustingTheArenaIsArenaExhaustedAndTheHeapRecovers()
    {
        const long arena = 16 * MiB;
        using NodeHeap heap = TestHeap.Create(arena: arena);
        MCache c = heap.CreateCache();
        var large = new List<nuint>();
        HeapOutOfMemoryException? oom = null;
        for (int i = 0; i < 100 && oom == null; i++)
        {
            try { large.Add(c.Malloc(1 << 20)); }
            catch (HeapOutOfMemoryException e) { oom = e; }
        }
        Assert.NotNull(oom);
        Assert.Equal(OutOfMemoryReason.ArenaExhausted, oom.Reason);
        Assert.Equal(arena, oom.Limit);
        Assert.Contains(arena.ToString(System.Globalization.CultureInfo.InvariantCulture), oom.Message, StringComparison.Ordinal);
        Assert.Equal(16, large.Count);
        Assert.Equal(heap.ArenaEnd, heap.ArenaUsed);
        TestHeap.AssertVerifies(heap);

        // Small allocations fail the same way (from the refill path), and the cache stays usable.
        HeapOutOfMemoryException ex = Assert.Throws<HeapOutOfMemoryException>(() => c.Malloc(64));
        Assert.Equal(OutOfMemoryReason.ArenaExhausted, ex.Reason);
        TestHeap.AssertVerifies(heap);

        heap.Free(large[3]);
        nuint p = c.Malloc(64);
        Assert.Equal(PointerError.None, heap.TryFindObject(p, out _));
        foreach (nuint q in large.Where((_, i) => i != 3)) heap.Free(q);
        nuint again = c.Malloc((nuint)(8 * MiB));
        Assert.True(TestHeap.AllBytesAre(again, 8 * MiB, 0));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void TheGrowthLimitStopsGrowthAndRaisingItLetsAllocationSucceed()
    {
        const long limit = 4 * MiB;
        using NodeHeap heap = TestHeap.Create(arena: 64 * MiB, growthLimit: limit);
        MCache c = heap.CreateCache();
        var objs = new List<nuint>();
        HeapOutOfMemoryException e = Assert.Throws<HeapOutOfMemoryException>(() =>
        {
            for (int i = 0; i < 100; i++) objs.Add(c.Malloc(512 << 10));
        });
        Assert.Equal(OutOfMemoryReason.GrowthLimit, e.Reason);
        Assert.Equal(limit, e.Limit);
        Assert.Contains("growth limit of 4194304 bytes", e.Message, StringComparison.Ordinal);
        Assert.True((long)(heap.ArenaUsed - heap.ArenaStart) <= limit);
        Assert.Equal(8, objs.Count);
        TestHeap.AssertVerifies(heap);

        heap.GrowthLimit = 8 * MiB;
        nuint p = c.Malloc(512 << 10);
        Assert.Equal(PointerError.None, heap.TryFindObject(p, out _));
        Assert.Equal(8 * MiB, heap.ReadMemStats().GrowthLimit);
        Assert.Throws<ArgumentOutOfRangeException>(() => heap.GrowthLimit = -1);
        TestHeap.AssertVerifies(heap);
    }

    [Theory]
    [InlineData(512 << 10, true)]     // large objects
    [InlineData(1024, true)]          // a small class: the refill finds no span
    [InlineData(1024, false)]         // the same, scan
    [InlineData(8, true)]             // tiny blocks
    public void TryMallocSaysTheGrowthLimitWasHitWithoutThrowingAndChangesNothingElse(int size, bool noscan)
    {
        const long limit = 4 * MiB;
        using NodeHeap heap = TestHeap.Create(arena: 64 * MiB, growthLimit: limit);
        MCache c = heap.CreateCache();
        long made = 0;
        OutOfMemoryReason reason = default;
        while (made < limit && c.TryMalloc((nuint)size, noscan, out nuint p, out reason))
        {
            Assert.NotEqual((nuint)0, p);
            made++;
        }
        Assert.True(made < limit, "the limit was never hit");
        Assert.Equal(OutOfMemoryReason.GrowthLimit, reason);
        Assert.True((long)(heap.ArenaUsed - heap.ArenaStart) <= limit);
        Assert.Equal(made, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);

        heap.GrowthLimit = 8 * MiB;                                      // a grant: the same cache goes on
        Assert.True(c.TryMalloc((nuint)size, noscan, out _, out _));
        Assert.Equal(made + 1, heap.ReadMemStats().HeapObjects);
        Assert.Throws<HeapOutOfMemoryException>(() =>                   // Malloc on the same path still throws
        {
            for (long i = 0; i < limit; i++) c.Malloc((nuint)size, noscan);
        });
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AGrowthLimitThatIsNotAPageMultipleStillNeverOvershoots()
    {
        using NodeHeap heap = TestHeap.Create(arena: 64 * MiB, growthLimit: 3 * MiB + 100);
        MCache c = heap.CreateCache();
        HeapOutOfMemoryException e = Assert.Throws<HeapOutOfMemoryException>(() =>
        {
            for (int i = 0; i < 10_000; i++) c.Malloc(4096);
        });
        Assert.Equal(OutOfMemoryReason.GrowthLimit, e.Reason);
        Assert.True((long)(heap.ArenaUsed - heap.ArenaStart) <= 3 * MiB + 100);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AReleasedCacheRefusesToAllocate()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        heap.ReleaseCache(c);
        heap.ReleaseCache(c);                                   // twice is harmless
        Assert.Throws<ObjectDisposedException>(() => c.Malloc(64));
        Assert.Throws<ObjectDisposedException>(() => c.Malloc(4));
        Assert.Throws<ObjectDisposedException>(() => c.Malloc(100_000));
        heap.Free(p);
        TestHeap.AssertVerifies(heap);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void AnObjectAsLargeAsTheWholeArenaFitsAnEmptyHeap()
    {
        const long arena = 16 * MiB;
        using NodeHeap heap = TestHeap.Create(arena: arena);
        MCache c = heap.CreateCache();
        nuint p = c.Malloc((nuint)arena);
        Assert.Equal(heap.ArenaStart, p);
        Assert.Equal(heap.ArenaEnd, heap.ArenaUsed);
        Assert.Equal(OutOfMemoryReason.ArenaExhausted, Assert.Throws<HeapOutOfMemoryException>(() => c.Malloc(1)).Reason);
        heap.Free(p);
        TestHeap.AssertVerifies(heap);
    }
}
