namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// The collector's warm-up (GcWarmup.cs) runs real cycles on scratch heaps of its own before a process's first pause;
/// it must leave nothing behind. That its pauses then compile nothing is checked in a fresh process
/// (Client.Tests' BinaryTreesBenchTests): in this one, other tests' cycles have compiled the paths already.
/// </summary>
public class GcWarmupTests
{
    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public void The_warm_up_gives_its_scratch_slot_back_and_leaves_the_heap_untouched(GcMode mode)
    {
        using var heap = NodeHeap.Create(new HeapOptions
        {
            ArenaSize = 64 * TestHeap.MiB,
            Slot = 11,
            BackgroundScavenger = false,
            Collector = true,
            GcMode = mode,
        });
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint kept = c.Malloc(64, noscan: true);
        roots.Push(kept);
        c.Malloc(64, noscan: true);                                         // garbage
        GcCycle cycle = heap.Collect();                                     // warms up first, if nothing in this process did
        Assert.Equal(1, cycle.Number);                                      // the scratch heaps' cycles are theirs, not this heap's
        Assert.Equal(1, heap.ReadMemStats().NumGC);
        Assert.Equal(64, cycle.Marked);
        Assert.Equal(0, cycle.PauseJitMethods);
        heap.FinishSweep();
        Assert.Equal(1, heap.ReadMemStats().HeapObjects);
        using var atLastSlot = NodeHeap.Create(new HeapOptions { ArenaSize = 64 * TestHeap.MiB, Slot = HeapLayout.MaxSlot, BackgroundScavenger = false });
        Assert.True(atLastSlot.Layout.GotHint, "the warm-up's scratch heap still holds the last slot's window");
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void A_coordinated_concurrent_cycle_compiles_nothing_inside_its_pauses()
    {
        using var heap = NodeHeap.Create(new HeapOptions { ArenaSize = 64 * TestHeap.MiB, Slot = 11, BackgroundScavenger = false, TrackHeapLive = true });
        MCache c = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        roots.Push(c.Malloc(64, noscan: true));
        c.Malloc(64, noscan: true);                                         // garbage
        heap.SweepBeforeStop();                                             // what a coordinator calls first: warms up if nothing did
        GcMarkSession session = heap.BeginConcurrentMarkSession();
        Assert.Empty(session.ShadeRoots());
        Assert.True(session.MarkStep().Drained);
        Assert.True(session.MarkTermination().Done);
        GcCycle cycle = session.Finish();
        Assert.Equal(64, cycle.Marked);
        Assert.Equal(0, cycle.PauseJitMethods);                             // pause 1 (Begin) and pause 2 (Finish)
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
    }
}
