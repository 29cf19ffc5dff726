namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>The sweep: sweepgen, who sweeps, and explicit frees meeting spans that wait to be swept.</summary>
public unsafe class GcSweepTests
{
    [Fact]
    public void A_cycle_leaves_every_span_unswept_and_a_finished_sweep_leaves_none()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        var kept = new List<nuint>();
        for (int i = 0; i < 5000; i++)
        {
            nuint p = c.Malloc((nuint)(16 + i % 500), noscan: i % 2 == 0);
            if (i % 3 == 0)
            {
                kept.Add(p);
                roots.Add(p);
            }
        }
        heap.Collect();
        Assert.True(heap.SweepPending || !heap.ReadMemStats().SweepPending);
        TestHeap.AssertVerifies(heap);                   // unswept spans on their lists, marks kept until swept
        heap.FinishSweep();
        TestHeap.AssertVerifies(heap);
        Assert.Equal(kept.Count, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void The_background_sweeper_finishes_the_sweep_without_any_allocation()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        for (int i = 0; i < 20000; i++) c.Malloc(64, noscan: true);
        heap.Collect();
        Assert.True(SpinWait.SpinUntil(() => !heap.SweepPending, TimeSpan.FromSeconds(60)), "the background sweeper did not finish");
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.HeapObjects);
        Assert.Equal(20000, s.GcFrees);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void A_refill_sweeps_its_class_before_it_takes_a_span()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        for (int i = 0; i < 4096; i++) c.Malloc(128, noscan: true);    // 64 spans of class 128 B, all garbage
        long sys = heap.ReadMemStats().HeapSys;
        heap.Collect();
        for (int i = 0; i < 4096; i++) c.Malloc(128, noscan: true);    // reuses the swept slots
        MemStats s = heap.ReadMemStats();
        Assert.Equal(sys, s.HeapSys);
        Assert.Equal(4096, s.HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void An_owner_free_on_an_unswept_span_goes_to_mcentral_not_to_the_free_stack()
    {
        // No background sweeper: it could sweep a's span between the cycle and the free, and the free would then be
        // a swept span's (stacked), which is not what this test looks at.
        using var heap = NodeHeap.Create(new HeapOptions
        {
            ArenaSize = 64 * TestHeap.MiB,
            Slot = 10,
            BackgroundScavenger = false,
            ScavengeDelay = TimeSpan.FromHours(1),
            BackgroundSweeper = false,
        });
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint a = c.Malloc(48, noscan: true);
        nuint garbage = c.Malloc(48, noscan: true);
        roots.Add(a);
        heap.Collect();                                   // a's span waits to be swept, a marked, garbage not
        Assert.Equal(PointerError.None, c.TryFree(a));
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.StackedObjects);                // stacked, its slot could be handed out and then swept as garbage
        nuint again = c.Malloc(48, noscan: true);         // the refill sweeps the span first, then may reuse a's slot
        roots.Add(again);
        heap.FinishSweep();
        Assert.Equal(PointerError.None, heap.TryFindObject(again, out _));
        Assert.NotEqual(PointerError.None, heap.TryFindObject(garbage, out _));
        Assert.Equal(1, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void A_free_of_an_object_the_sweep_reclaimed_changes_nothing()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(200, noscan: false);
        nuint t = c.Malloc(5, noscan: true);
        nuint kept = c.Malloc(200, noscan: false);
        heap.CreateRoots().Add(kept);
        heap.Collect();
        heap.FinishSweep();
        Assert.Equal(PointerError.AlreadyFreed, c.TryFree(a));   // its span lives on (kept): the sweep left the freed mark
        Assert.Equal(PointerError.NotInUse, c.TryFree(t));       // the tiny span had nothing live: back to mheap
        Assert.Equal(1, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void The_verifier_finds_a_mark_bit_left_on_a_swept_span()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(64, noscan: true);
        TestHeap.AssertVerifies(heap);
        TestHeap.SpanOf(heap, a)->MarkBits[0] |= 1;
        VerifyReport r = heap.Verify();
        Assert.False(r.Ok);
        Assert.Contains("still has mark bits", r.Problem);
    }

    [Fact]
    public void The_verifier_finds_a_span_that_waits_for_a_sweep_but_is_on_no_unswept_list()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(64, noscan: true);
        heap.Collect();
        TestHeap.SpanOf(heap, a)->SweepGen += 2;          // claims to be swept while its mcentral keeps it unswept
        VerifyReport r = heap.Verify();
        Assert.False(r.Ok);
        Assert.Contains("not on", r.Problem is null ? "" : r.Problem.Replace("but on", "but not on", StringComparison.Ordinal));
    }
}
