namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// What a coordinated cycle's first pause does on one node heap (GcMarkSession): the last cycle's sweep is finished
/// before the stop (NodeHeap.SweepBeforeStop, the mutators running), so the pause's sweep termination sweeps nothing;
/// and a concurrent session's pause only shades the roots (a snapshot), leaving the scanning to mark steps.
/// </summary>
public unsafe class SessionPauseTests
{
    private static NodeHeap CreateHeap(GcMode mode) => NodeHeap.Create(new HeapOptions
    {
        ArenaSize = 64 * TestHeap.MiB,
        Slot = 15,
        BackgroundScavenger = false,
        BackgroundSweeper = false,            // the last cycle's spans stay unswept until someone sweeps them
        GcMode = mode,
    });

    /// <summary>A cycle that leaves <paramref name="garbage"/> dead objects in unswept spans.</summary>
    private static void LeaveUnsweptGarbage(NodeHeap heap, MCache cache, int garbage)
    {
        for (int i = 0; i < garbage; i++) cache.Malloc(64, noscan: true);
        heap.Collect();
        Assert.True(heap.SweepPending);
    }

    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public void A_session_begun_after_the_sweep_before_the_stop_sweeps_nothing_inside_its_pause(GcMode mode)
    {
        using NodeHeap heap = CreateHeap(mode);
        MCache cache = heap.CreateCache();
        LeaveUnsweptGarbage(heap, cache, 5000);

        long sweptBefore = heap.SweepBeforeStop();
        GcMarkSession session = mode == GcMode.Concurrent ? heap.BeginConcurrentMarkSession() : heap.BeginMarkSession();

        Assert.True(sweptBefore > 0, "the last cycle left spans to sweep");
        Assert.Equal(0, session.SweptInPause);
        Assert.False(heap.SweepPending);
        if (mode == GcMode.Concurrent) Assert.True(session.MarkTermination().Done);
        session.Finish();
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void Without_the_sweep_before_the_stop_the_pause_sweeps_what_the_last_cycle_left()
    {
        // The control for the test above: SweptInPause counts what a pause sweeps, so 0 there is the sweep's doing.
        using NodeHeap heap = CreateHeap(GcMode.Concurrent);
        MCache cache = heap.CreateCache();
        LeaveUnsweptGarbage(heap, cache, 5000);

        GcMarkSession session = heap.BeginConcurrentMarkSession();

        Assert.True(session.SweptInPause > 0, "the pause swept the last cycle's spans");
        Assert.Equal(0, heap.SweepBeforeStop());             // nothing left for a sweep before the next stop
        session.Abort();
    }

    [Fact]
    public void A_concurrent_sessions_pause_shades_the_roots_and_scans_nothing_until_mark_steps()
    {
        using NodeHeap heap = CreateHeap(GcMode.Concurrent);
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        const int Chain = 2000;
        nuint next = 0;
        for (int i = 0; i < Chain; i++)
        {
            nuint o = cache.Malloc(64, noscan: false);           // every word a pointer word
            *(ulong*)o = next;
            next = o;
        }
        roots.Add(next);

        GcMarkSession session = heap.BeginConcurrentMarkSession();
        Assert.Empty(session.ShadeRoots());

        Assert.Equal(1, session.Counts.Objects);                 // the root, greyed: the snapshot
        Assert.Equal(0, session.Counts.ScannedObjects);
        GcMarkStep step;
        do step = session.MarkStep(500);
        while (!step.Drained);
        Assert.Equal(Chain, step.Counts.Objects);
        Assert.True(session.MarkTermination().Done);
        session.Finish();
        heap.FinishSweep();
        Assert.Equal(Chain, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void Reading_a_concurrent_sessions_counts_neither_scans_nor_drops_a_word_for_another_node()
    {
        using NodeHeap heap = CreateHeap(GcMode.Concurrent);
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        ulong foreign = (0x00c0UL << 32) + (16UL << 40) + 0x1000;      // an object in slot 16's arena: another node's
        nuint tail = cache.Malloc(64, noscan: false);
        *(ulong*)tail = foreign;
        nuint head = cache.Malloc(64, noscan: false);
        *(ulong*)head = tail;
        roots.Add(head);

        GcMarkSession session = heap.BeginConcurrentMarkSession();
        Assert.Empty(session.ShadeRoots());
        MarkCounts read = session.Counts;                        // a coordinator reads them after every step

        Assert.Equal(0, read.ScannedObjects);
        GcMarkStep step = session.MarkStep();
        Assert.True(step.Drained);
        Assert.Equal([foreign], step.Outgoing);
        Assert.Equal(2, step.Counts.Objects);
        session.Abort();
    }
}
