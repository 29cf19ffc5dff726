namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>The pacer: cycles start at the heap goal (at a refill or a large allocation), GOGC off and the memory limit, and out of memory only after a cycle could not help.</summary>
public unsafe class GcPacerTests
{
    private static NodeHeap Collected(int gcPercent = 100, long memoryLimit = long.MaxValue, long growthLimit = long.MaxValue, List<GcCycle>? cycles = null) =>
        NodeHeap.Create(new HeapOptions
        {
            ArenaSize = 256 * TestHeap.MiB,
            Slot = 10,
            GrowthLimit = growthLimit,
            BackgroundScavenger = false,
            Collector = true,
            GcPercent = gcPercent,
            MemoryLimit = memoryLimit,
            OnGcCycle = cycles == null ? null : c => cycles.Add(c),
        });

    [Theory]
    [InlineData(0, 16)]
    [InlineData(0, 100_000)]
    [InlineData(3 << 20, 16)]
    [InlineData(10 << 20, 48)]
    public void Cycles_start_when_heap_live_reaches_the_goal(long liveBytes, int garbageSize)
    {
        var cycles = new List<GcCycle>();
        using NodeHeap heap = Collected(cycles: cycles);
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        Assert.Equal(GcPacer.DefaultHeapMinimum, heap.Pacer.Goal);            // before the first cycle: Go's heapminimum
        for (long b = 0; b < liveBytes; b += 4096) roots.Push(c.Malloc(4096, noscan: true));
        int before = cycles.Count;                                           // cycles while the live set grew
        long previousGoal = heap.Pacer.Goal;
        cycles.Clear();
        long allocated = 0;
        while (cycles.Count < 5)
        {
            c.Malloc((nuint)garbageSize, noscan: true);
            allocated += garbageSize;
            Assert.True(allocated < 1L << 30, "no cycle started");
        }
        long slack = Math.Max(HeapConstants.PageSize, ((garbageSize + HeapConstants.PageMask) & ~HeapConstants.PageMask) * 2L);
        foreach (GcCycle cycle in cycles)
        {
            Assert.False(cycle.Forced);
            Assert.InRange(cycle.HeapLiveBefore, previousGoal, previousGoal + slack);
            Assert.Equal(GcPacer.GoalFor(cycle.Marked, 100, long.MaxValue), cycle.Goal);
            Assert.InRange(cycle.Marked, liveBytes, liveBytes + 2 * slack);     // the live set (and the cycle's own allocation in flight)
            previousGoal = cycle.Goal;
        }
        Assert.Equal(Math.Max(2 * cycles[^1].Marked, GcPacer.DefaultHeapMinimum), cycles[^1].Goal);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(before + 5, s.NumGC);
        Assert.Equal(0, s.NumForcedGC);
        Assert.Equal(cycles[^1].Goal, s.NextGC);
        Assert.Equal(before + 5, s.RecentPausesNs.Count);
        Assert.Equal(s.RecentPausesNs.Sum(), s.PauseTotalNs);
        Assert.True(s.LastGC > 0 && s.GCCPUFraction > 0 && s.GCCPUFraction < 1);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void GOGC_off_never_starts_a_cycle()
    {
        var cycles = new List<GcCycle>();
        using NodeHeap heap = Collected(gcPercent: -1, cycles: cycles);
        MCache c = heap.CreateCache();
        for (int i = 0; i < 100_000; i++) c.Malloc(256, noscan: true);       // 25 MiB of garbage
        Assert.Empty(cycles);
        Assert.Equal(long.MaxValue, heap.ReadMemStats().NextGC);
        Assert.Equal(100_000, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void With_GOGC_off_the_memory_limit_is_the_goal()
    {
        var cycles = new List<GcCycle>();
        using NodeHeap heap = Collected(gcPercent: -1, memoryLimit: 2 << 20, cycles: cycles);
        MCache c = heap.CreateCache();
        for (int i = 0; i < 100_000; i++) c.Malloc(256, noscan: true);
        Assert.NotEmpty(cycles);
        Assert.All(cycles, cy => Assert.InRange(cy.HeapLiveBefore, 2 << 20, (2 << 20) + 2 * HeapConstants.PageSize));
        Assert.True(heap.ReadMemStats().HeapSys <= 4 << 20, $"HeapSys {heap.ReadMemStats().HeapSys}");
    }

    [Fact]
    public void The_memory_limit_caps_the_GOGC_goal()
    {
        var pacer = new GcPacer(100, 5 << 20);
        pacer.EndCycle(4 << 20);
        Assert.Equal(5 << 20, pacer.Goal);
        pacer.MemoryLimit = long.MaxValue;
        Assert.Equal(8 << 20, pacer.Goal);
        pacer.GcPercent = 50;
        Assert.Equal(6 << 20, pacer.Goal);
        pacer.EndCycle(1 << 20);
        Assert.Equal(2 << 20, pacer.Goal);                                     // heapminimum 4 MiB × 50 %
    }

    [Fact]
    public void Garbage_never_runs_a_collected_heap_out_of_its_growth_limit()
    {
        using NodeHeap heap = Collected(gcPercent: -1, growthLimit: 8 << 20);   // no pacing: only the limit triggers cycles
        MCache c = heap.CreateCache();
        for (int i = 0; i < 20_000; i++) c.Malloc((nuint)(1000 + i % 3000), noscan: i % 2 == 0);   // ~50 MiB
        for (int i = 0; i < 200; i++) c.Malloc(200_000, noscan: true);                                // ~40 MiB large
        MemStats s = heap.ReadMemStats();
        Assert.True(s.NumForcedGC > 0);
        Assert.True(s.HeapSys <= 8 << 20);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void Out_of_memory_comes_only_after_a_cycle_could_not_help()
    {
        var cycles = new List<GcCycle>();
        using NodeHeap heap = Collected(gcPercent: -1, growthLimit: 8 << 20, cycles: cycles);
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        HeapOutOfMemoryException e = Assert.Throws<HeapOutOfMemoryException>(() =>
        {
            for (int i = 0; i < 100_000; i++) roots.Push(c.Malloc(1000, noscan: true));   // all live
        });
        Assert.Equal(OutOfMemoryReason.GrowthLimit, e.Reason);
        Assert.NotEmpty(cycles);
        Assert.True(cycles[^1].Forced);
        Assert.True(cycles[^1].Marked >= (7 << 20), $"the last cycle marked {cycles[^1].Marked} bytes");
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void Without_the_collector_the_same_allocation_fails_with_no_cycle()
    {
        using NodeHeap heap = TestHeap.Create(growthLimit: 8 << 20);
        MCache c = heap.CreateCache();
        Assert.Throws<HeapOutOfMemoryException>(() =>
        {
            for (int i = 0; i < 100_000; i++) c.Malloc(1000, noscan: true);
        });
        Assert.Equal(0, heap.ReadMemStats().NumGC);
    }
}
