namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// The collector's warm-up (GcWarmup.cs) runs real cycles on scratch heaps of its own before a process's first pause;
/// the cycles that follow compile nothing inside their pauses, and it leaves nothing behind. The pause checks bite when
/// they run first in a process (alone, as CI's filtered runs and a fresh process in Client.Tests' BinaryTreesBenchTests
/// do); after other tests' cycles the paths are compiled anyway.
/// </summary>
public class GcWarmupTests
{
    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public void A_first_cycle_compiles_nothing_inside_its_pauses_and_counts_as_the_heaps_first(GcMode mode)
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
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void Once_every_kind_is_warm_the_scratch_slot_is_free_again()
    {
        // Every kind warmed (each call waits for its warm-up): no scratch heap can be made after this, in any test.
        foreach (GcMode mode in new[] { GcMode.StopTheWorld, GcMode.Concurrent })
        {
            using var collected = NodeHeap.Create(new HeapOptions { ArenaSize = 64 * TestHeap.MiB, Slot = 11, BackgroundScavenger = false, Collector = true, GcMode = mode });
            collected.Collect();
        }
        using (var coordinated = NodeHeap.Create(new HeapOptions { ArenaSize = 64 * TestHeap.MiB, Slot = 11, BackgroundScavenger = false, TrackHeapLive = true }))
        {
            coordinated.SweepBeforeStop();
        }
        int scratch = NodeHeap.LastWarmupSlot;
        Assert.InRange(scratch, HeapLayout.MaxSlot / 2, HeapLayout.MaxSlot - 1);   // never one of the low slots a cluster hands out
        using var again = NodeHeap.Create(new HeapOptions { ArenaSize = 64 * TestHeap.MiB, Slot = scratch, BackgroundScavenger = false });
        Assert.True(again.Layout.GotHint, $"the warm-up's scratch heap still holds slot {scratch}'s window");
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
