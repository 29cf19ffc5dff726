using System.Diagnostics;

namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// A coordinated cycle's finish may hold the node's background sweeper back (GcMarkSession.Finish(sweepInBackground:
/// false)) until every node of the cycle has finished (NodeHeap.StartBackgroundSweep): the spans wait unswept meanwhile,
/// and once started the sweeper sweeps them all, as a finish that starts it at once does.
/// </summary>
public class HeldSweepTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    private static NodeHeap CreateHeap(GcMode mode) => NodeHeap.Create(new HeapOptions
    {
        ArenaSize = 64 * TestHeap.MiB,
        Slot = 15,
        BackgroundScavenger = false,
        GcMode = mode,
    });

    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public async Task A_finish_that_holds_the_sweeper_queues_none_until_it_is_started_and_then_every_span_is_swept(GcMode mode)
    {
        using NodeHeap heap = CreateHeap(mode);
        MCache cache = heap.CreateCache();
        for (int i = 0; i < 5000; i++) cache.Malloc(64, noscan: true);   // garbage: no root holds it

        GcMarkSession session = mode == GcMode.Concurrent ? heap.BeginConcurrentMarkSession() : heap.BeginMarkSession();
        session.ShadeRoots();
        if (mode == GcMode.Concurrent) Assert.True(session.MarkTermination().Done);
        session.Finish(sweepInBackground: false);

        Assert.True(heap.SweepPending, "the cycle's spans wait for their sweep");
        Assert.False(heap.BackgroundSweepQueued, "the finish queued the background sweeper it was to hold");

        heap.StartBackgroundSweep();
        var waited = Stopwatch.StartNew();
        while (heap.SweepPending && waited.Elapsed < Bound) await Task.Yield();
        Assert.False(heap.SweepPending, $"the background sweeper did not sweep within {Bound}");
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }
}
