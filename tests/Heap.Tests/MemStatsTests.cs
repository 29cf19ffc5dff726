namespace ClusterHeap.Heap.Tests;

/// <summary>Go's MemStats fields, checked against sums the test computes from what it allocated.</summary>
public unsafe class MemStatsTests
{
    private const int Page = HeapConstants.PageSize;

    /// <summary>What the test believes is live: per object its class (0 = large, with its page bytes) and tiny block.</summary>
    private sealed class Ledger
    {
        public readonly Dictionary<nuint, (int Class, long Bytes)> Objects = [];

        public void Add(nuint p, long requested, bool noscan)
        {
            if (requested > SizeClasses.MaxSmallSize)
            {
                Objects[p] = (0, (requested + Page - 1) / Page * Page);
            }
            else if (noscan && requested < SizeClasses.TinySize)
            {
                Objects[p] = (SizeClasses.TinySizeClass, 0);   // bytes by block
            }
            else
            {
                int c = SizeClasses.ClassOf((nuint)requested);
                Objects[p] = (c, SizeClasses.SizeOf(c));
            }
        }

        /// <summary>Σ live sizes: class size per small object, page bytes per large one, 16 per tiny block with a live object.</summary>
        public long HeapAlloc(IReadOnlySet<nuint> openTinyBlocks) =>
            Objects.Values.Sum(o => o.Bytes)
            + Objects.Where(o => o.Value is { Class: SizeClasses.TinySizeClass, Bytes: 0 }).Select(o => o.Key & ~(nuint)15)
                .Concat(openTinyBlocks).Distinct().Count() * 16L;
    }

    private static void AssertConsistent(MemStats s, Ledger ledger, IReadOnlySet<nuint> openTinyBlocks)
    {
        Assert.Equal(s.HeapSys, s.HeapIdle + s.HeapInuse);
        Assert.Equal(s.Mallocs - s.Frees, s.HeapObjects);
        Assert.Equal(ledger.Objects.Count, s.HeapObjects);
        Assert.Equal(ledger.HeapAlloc(openTinyBlocks), s.HeapAlloc);
        Assert.Equal(s.HeapAlloc, s.Alloc);
        Assert.True(s.HeapReleased <= s.HeapIdle);
        Assert.True(s.HeapAlloc <= s.HeapInuse);
        Assert.Equal(SizeClasses.NumClasses - 1, s.BySize.Count);
        for (int c = 1; c < SizeClasses.NumClasses; c++)
        {
            SizeClassStats row = s.BySize[c - 1];
            Assert.Equal(c, row.SizeClass);
            Assert.Equal(SizeClasses.SizeOf(c), row.Size);
            Assert.Equal(ledger.Objects.Values.Count(o => o.Class == c), row.Live);
        }
        Assert.Equal(ledger.Objects.Values.Count(o => o.Class == 0), s.LargeObjects);
        Assert.Equal(ledger.Objects.Values.Where(o => o.Class == 0).Sum(o => o.Bytes), s.LargeBytes);
        Assert.True(s.Sys > s.HeapSys + s.SpansSys + s.BitmapSys, "Sys counts span structs too");
    }

    [Fact]
    public void StatsMatchTheLiveObjectsTheTestAllocatedAtEveryStep()
    {
        using NodeHeap heap = TestHeap.Create(arena: 128L << 20);
        MCache c = heap.CreateCache();
        var ledger = new Ledger();
        var rng = new Random(42);
        long lastTotal = 0;
        var live = new List<nuint>();
        int[] sizes = [1, 3, 8, 15, 16, 17, 100, 1024, 1025, 5000, 32768, 32769, 100_000];
        for (int step = 0; step < 3000; step++)
        {
            if (live.Count > 0 && rng.Next(3) == 0)
            {
                int i = rng.Next(live.Count);
                heap.Free(live[i]);
                ledger.Objects.Remove(live[i]);
                live[i] = live[^1];
                live.RemoveAt(live.Count - 1);
            }
            else
            {
                int size = sizes[rng.Next(sizes.Length)];
                bool noscan = rng.Next(2) == 0;
                nuint p = c.Malloc((nuint)size, noscan);
                ledger.Add(p, size, noscan);
                live.Add(p);
            }
            if (step % 100 == 0)
            {
                MemStats s = heap.ReadMemStats();
                // The open tiny block counts while the cache may still bump into it (see TinyAllocatorTests).
                AssertConsistent(s, ledger, OpenTinyBlock(heap, c));
                Assert.True(s.TotalAlloc >= lastTotal, "TotalAlloc went down");
                lastTotal = s.TotalAlloc;
            }
        }
        heap.ReleaseCache(c);
        AssertConsistent(heap.ReadMemStats(), ledger, new HashSet<nuint>());
        TestHeap.AssertVerifies(heap);
        foreach (nuint p in live) heap.Free(p);
        ledger.Objects.Clear();
        MemStats end = heap.ReadMemStats();
        AssertConsistent(end, ledger, new HashSet<nuint>());
        Assert.Equal(0, end.HeapAlloc);
        Assert.Equal(0, end.HeapInuse);
        Assert.True(end.TotalAlloc >= lastTotal);
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>The cache's open tiny block, found as the tiny-class slot whose mask says a live tiny block, not closed.</summary>
    private static HashSet<nuint> OpenTinyBlock(NodeHeap heap, MCache c)
    {
        var set = new HashSet<nuint>();
        foreach (SpanInfo s in heap.GetSpans(SizeClasses.TinySizeClass).Where(s => s.Noscan))
        {
            MSpan* span = TestHeap.SpanOf(heap, s.Start);
            for (int i = 0; i < span->NElems; i++)
            {
                ulong mask = span->TinyMasks[i];
                if ((mask & TinyBlock.IsTiny) != 0 && !TinyBlock.IsClosed(mask)) set.Add(s.Start + (nuint)(i * 16));
            }
        }
        return set;
    }

    [Fact]
    public void RefillsCountEverySpanHandedToACache()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        Assert.Equal(0, heap.ReadMemStats().Refills);
        c.Malloc(64);
        Assert.Equal(1, heap.ReadMemStats().Refills);
        int perSpan = SizeClasses.ObjectsOf(SizeClasses.ClassOf(64));
        for (int i = 1; i < perSpan; i++) c.Malloc(64);
        Assert.Equal(1, heap.ReadMemStats().Refills);          // the first span is exactly full
        c.Malloc(64);
        Assert.Equal(2, heap.ReadMemStats().Refills);
        c.Malloc(64, noscan: false);                           // another span class
        Assert.Equal(3, heap.ReadMemStats().Refills);
        c.Malloc(100_000);                                     // large: no refill
        Assert.Equal(3, heap.ReadMemStats().Refills);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void TinyAllocsCountTinyObjectsAndMallocsCountsThemToo()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        for (int i = 0; i < 10; i++) c.Malloc(4);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(10, s.TinyAllocs);
        Assert.Equal(10, s.Mallocs);
        Assert.Equal(10, s.BySize[SizeClasses.TinySizeClass - 1].Mallocs);
        Assert.Equal(48, s.HeapAlloc);                          // 10 × 4 bytes in three 16-byte blocks
        Assert.Equal(48, s.TotalAlloc);
        heap.ReleaseCache(c);
        Assert.Equal(10, heap.ReadMemStats().TinyAllocs);       // a released cache's counters are kept
    }

    [Fact]
    public void ReleasingACacheKeepsItsCountersAndFreesCountOnTheFreeingSide()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache a = heap.CreateCache();
        MCache b = heap.CreateCache();
        nuint p = a.Malloc(256);
        nuint q = b.Malloc(256);
        heap.ReleaseCache(a);
        b.Free(p);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(2, s.Mallocs);
        Assert.Equal(1, s.Frees);
        Assert.Equal(256, s.HeapAlloc);
        Assert.Equal(512, s.TotalAlloc);
        Assert.Equal(PointerError.None, heap.TryFindObject(q, out _));
        TestHeap.AssertVerifies(heap);
    }
}
