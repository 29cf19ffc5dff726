namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>The span listing (GetSpans, what every heap map draws from) says which spans the last cycle left to sweep.</summary>
public unsafe class UnsweptListingTests
{
    private static NodeHeap CreateHeap() => NodeHeap.Create(new HeapOptions
    {
        ArenaSize = TestHeap.MiB * 64,
        Slot = 10,
        BackgroundScavenger = false,
        ScavengeDelay = TimeSpan.FromHours(1),
        Collector = true,
        BackgroundSweeper = false,
    });

    [Fact]
    public void After_a_cycle_every_span_is_listed_unswept_with_its_garbage_counted_until_the_sweep_frees_it()
    {
        using NodeHeap heap = CreateHeap();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint large = c.Malloc(200_000, noscan: true);           // garbage: no root holds it
        nuint kept = c.Malloc(64, noscan: true);
        roots.Add(kept);
        for (int i = 0; i < 500; i++) c.Malloc(64, noscan: true);  // garbage beside the kept object
        Assert.DoesNotContain(heap.GetSpans(), s => s.Unswept);

        heap.Collect();

        IReadOnlyList<SpanInfo> rows = heap.GetSpans();
        SpanInfo largeRow = rows.Single(s => s.Start == large);
        Assert.True(largeRow.InUse && largeRow.Unswept, $"large span after the cycle: {largeRow}");
        Assert.Equal(1, largeRow.Live);
        SpanInfo smallRow = rows.Single(s => s.InUse && s.Start <= kept && kept < s.Start + (nuint)(s.Pages * HeapConstants.PageSize));
        Assert.True(smallRow.Unswept, $"the kept object's span after the cycle: {smallRow}");
        Assert.True(smallRow.Live > 1, $"before its sweep the span still counts its garbage: {smallRow}");
        Assert.All(rows.Where(s => !s.InUse), s => Assert.False(s.Unswept));
        Assert.True(heap.SweepPending);

        heap.FinishSweep();

        rows = heap.GetSpans();
        Assert.DoesNotContain(rows, s => s.Unswept);
        Assert.DoesNotContain(rows, s => s.InUse && s.Start == large);  // unreached: its pages went back to mheap
        SpanInfo swept = rows.Single(s => s.InUse && s.Start <= kept && kept < s.Start + (nuint)(s.Pages * HeapConstants.PageSize));
        Assert.Equal(1, swept.Live);
        TestHeap.AssertVerifies(heap);
    }
}
