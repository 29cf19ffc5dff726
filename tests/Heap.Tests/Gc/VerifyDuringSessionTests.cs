namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// The verifier between the steps of a coordinated mark session (GcMarkSession.cs): a session holds the world lock per
/// step only, so <see cref="NodeHeap.Verify"/> (the cluster's `verify`, the stress report's) can run while the session's
/// marks sit on swept spans. Those marks are the session's, not a sweep that forgot them; once the session ends the
/// verifier's check that a swept span carries no marks applies again, and still catches a real leftover.
/// </summary>
public unsafe class VerifyDuringSessionTests
{
    /// <summary>A heap with live rooted objects and garbage in small and large spans.</summary>
    private static (NodeHeap Heap, MCache Cache, RootSet Roots) Populated()
    {
        NodeHeap heap = TestHeap.Create();
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        for (int i = 0; i < 200; i++)
        {
            nuint p = cache.Malloc(48, noscan: true);
            if (i % 2 == 0) roots.Add((ulong)p);
        }

        roots.Add((ulong)cache.Malloc(64 << 10, noscan: true));
        cache.Malloc(64 << 10, noscan: true);
        return (heap, cache, roots);
    }

    [Fact]
    public void Verify_between_the_steps_of_a_stop_the_world_session_accepts_the_sessions_marks()
    {
        (NodeHeap heap, _, _) = Populated();
        using (heap)
        {
            GcMarkSession session = heap.BeginMarkSession();
            TestHeap.AssertVerifies(heap);                  // begun: every span swept, nothing marked yet
            session.ShadeRoots();
            TestHeap.AssertVerifies(heap);                  // marked from the roots: swept spans carry the session's marks
            session.Shade([]);
            TestHeap.AssertVerifies(heap);
            session.Finish();
            TestHeap.AssertVerifies(heap);                  // the marks moved to unswept spans
            heap.FinishSweep();
            TestHeap.AssertVerifies(heap);
        }
    }

    [Fact]
    public void Verify_after_an_aborted_session_finds_no_marks_left()
    {
        (NodeHeap heap, _, _) = Populated();
        using (heap)
        {
            GcMarkSession session = heap.BeginMarkSession();
            session.ShadeRoots();
            session.Abort();
            TestHeap.AssertVerifies(heap);
        }
    }

    [Fact]
    public void Verify_with_no_session_open_still_reports_a_swept_span_that_kept_mark_bits()
    {
        (NodeHeap heap, _, RootSet roots) = Populated();
        using (heap)
        {
            nuint live = (nuint)roots.Words[0];
            GcMarkSession session = heap.BeginMarkSession();
            session.ShadeRoots();
            session.Abort();
            // A mark bit left on a swept span with no mark open: what a sweep that forgot its marks would leave.
            MSpan* s = TestHeap.SpanOf(heap, live);
            s->MarkBits[0] |= 1;
            VerifyReport r = heap.Verify();
            Assert.False(r.Ok);
            Assert.Contains($"swept span 0x{s->StartAddr:x} still has mark bits", r.Problem);
        }
    }
}
