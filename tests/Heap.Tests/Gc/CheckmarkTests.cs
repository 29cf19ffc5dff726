namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// Checkmark (HeapOptions.Checkmark, Go's GODEBUG=gccheckmark=1) after concurrent marks: clean while mutator threads
/// race with the mark worker — allocating, rewiring pointer words through the barrier, hiding objects behind others,
/// dropping roots — and loud (a CheckmarkException naming the object) when the mark is broken on purpose: without the
/// write barrier, an object moved from an unscanned object into one born marked is never found; without born marking
/// (and the root barrier, which would otherwise shade it when rooted), a new object is never found.
/// </summary>
public unsafe class CheckmarkTests
{
    private static NodeHeap Create(int slot, bool worker = true, bool collector = false) => NodeHeap.Create(new HeapOptions
    {
        ArenaSize = 256 * TestHeap.MiB,
        Slot = slot,
        BackgroundScavenger = false,
        Collector = collector,
        GcPercent = 50,
        GcMode = GcMode.Concurrent,
        MarkWorker = worker,
        Checkmark = true,
    });

    /// <summary>
    /// Roots → a → b. The mark starts (a grey, not yet scanned); the client moves b from a into c, allocated during the
    /// mark (born marked, so never scanned), and clears a's word. Only the barrier's shades of the old and new words
    /// can tell the marker about b. Returns b.
    /// </summary>
    private static nuint HideBehindNewObject(NodeHeap heap, MCache cache, RootSet roots, out GcMarkSession session)
    {
        nuint a = cache.MallocTyped(16, [0b11]);
        nuint b = cache.MallocTyped(16, [0b11]);
        ((ulong*)b)[1] = 0xB0B;                                    // a scalar in a pointer word: dangling, harmless
        ((ulong*)a)[0] = b;
        roots.Add(a);
        session = heap.BeginConcurrentMarkSession();
        nuint c = cache.MallocTyped(16, [0b11]);
        roots.Add(c);
        ulong word = b, zero = 0;
        Assert.Equal(PointerError.None, heap.TryWrite(c, new ReadOnlySpan<byte>(&word, 8)));
        Assert.Equal(PointerError.None, heap.TryWrite(a, new ReadOnlySpan<byte>(&zero, 8)));
        Assert.True(session.MarkStep().Drained);
        Assert.True(session.MarkTermination().Done);
        return b;
    }

    [Fact]
    public void Checkmark_is_clean_when_the_barrier_shades_a_word_moved_behind_a_born_marked_object()
    {
        using NodeHeap heap = Create(slot: 51);
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint b = HideBehindNewObject(heap, cache, roots, out GcMarkSession session);
        GcCycle cycle = session.Finish();
        heap.FinishSweep();
        Assert.True(cycle.Concurrent);
        Assert.Equal(PointerError.None, heap.TryFindObject(b, out _));
        Assert.Equal(3, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void Checkmark_names_the_object_a_mark_without_the_write_barrier_missed()
    {
        using NodeHeap heap = Create(slot: 52);
        heap.DebugBreak = GcDebugBreak.SkipWriteBarrier;
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        nuint b = HideBehindNewObject(heap, cache, roots, out GcMarkSession session);
        CheckmarkException e = Assert.Throws<CheckmarkException>(() => session.Finish());
        Assert.Equal(b, e.Address);
        Assert.Contains($"0x{b:x}", e.Message);
        // Nothing was swept on the broken mark's evidence: b is still there, and the heap is consistent.
        Assert.Equal(PointerError.None, heap.TryFindObject(b, out _));
        Assert.False(heap.IsMarking);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void Checkmark_names_a_new_object_that_was_not_born_marked()
    {
        using NodeHeap heap = Create(slot: 53);
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        roots.Add(cache.MallocTyped(16, [0b11]));
        heap.DebugBreak = GcDebugBreak.SkipBornMarked | GcDebugBreak.SkipRootBarrier;
        GcMarkSession session = heap.BeginConcurrentMarkSession();
        nuint fresh = cache.MallocTyped(16, [0b11]);
        roots.Add(fresh);
        Assert.True(session.MarkStep().Drained);
        CheckmarkException e = Assert.Throws<CheckmarkException>(() => session.Finish());
        Assert.Equal(fresh, e.Address);
        TestHeap.AssertVerifies(heap);
        // The same with either half working is clean: born marked, or shaded when rooted.
        foreach (GcDebugBreak only in new[] { GcDebugBreak.SkipBornMarked, GcDebugBreak.SkipRootBarrier })
        {
            heap.DebugBreak = only;
            session = heap.BeginConcurrentMarkSession();
            roots.Add(cache.MallocTyped(16, [0b11]));
            session.MarkStep();
            session.Finish();
        }
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void Checkmark_stays_clean_while_mutator_threads_race_with_concurrent_marks(bool worker)
    {
        using NodeHeap heap = Create(slot: worker ? 54 : 55, worker, collector: true);
        const int Threads = 3, Steps = 40_000, Keep = 600;
        int forced = 0;
        RacingMutators.Race(Threads, t => RacingMutators.Run(heap, t, Steps, Keep, Rewire, links: [0, 2], blobWord: 3), meanwhile: () =>
        {
            heap.Collect();                                      // a whole concurrent cycle from outside the mutators
            return ++forced < 5;
        });
        MemStats s = heap.ReadMemStats();
        Assert.True(s.NumGC >= 3, $"only {s.NumGC} cycles ran");
        Assert.True(heap.LastCycle!.Concurrent);
        heap.Collect();
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);        // every thread released its roots at the end
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>
    /// One step over a table of rooted 32-byte nodes: word 0 chains to the node it replaced, word 1 the cookie, word 2 a
    /// cross link set through the barrier (StorePointer) to another rooted node whose root is then often dropped — the
    /// object survives only through that link — and word 3 a noscan blob. Every node reachable through words 0 and 2
    /// keeps its cookie.
    /// </summary>
    private static void Rewire(RacingMutators.Mutator m)
    {
        int slot = m.Rng.Next(m.Keep);
        nuint old = (nuint)m.Roots[slot];
        if (old != 0) RacingMutators.CheckCookie(old);
        nuint n = m.Cache.MallocTyped(32, [0b1101]);
        m.Heap.StorePointer(n, m.Rng.Next(10) == 0 ? 0 : old);           // sometimes a chain ends here
        m.Roots[slot] = n;
        ((ulong*)n)[1] = RacingMutators.Cookie(n);
        if (m.Rng.Next(4) == 0) m.Heap.StorePointer(n + 24, m.Cache.Malloc((nuint)m.Rng.Next(1, 600), noscan: true));
        int other = m.Rng.Next(m.Keep);
        nuint target = (nuint)m.Roots[other];
        if (target != 0 && other != slot)
        {
            m.Heap.StorePointer(n + 16, target);                   // hide target behind n ...
            if (m.Rng.Next(2) == 0) m.Roots[other] = 0;              // ... and let go of its root
        }
        nuint donor = (nuint)m.Roots[m.Rng.Next(m.Keep)];
        if (donor != 0 && donor != n && m.Rng.Next(3) == 0)
        {
            nuint tail = (nuint)((ulong*)donor)[0];
            m.Heap.StorePointer(n + 16, tail);                     // move donor's chain behind n (born marked) ...
            m.Heap.StorePointer(donor, 0);                         // ... and cut it from donor: only the barrier tells
        }
        if (m.Rng.Next(40) == 0) m.Roots[m.Rng.Next(m.Keep)] = 0;        // drop a whole chain
        if (m.Rng.Next(8) == 0)
        {
            nuint cut = (nuint)m.Roots[m.Rng.Next(m.Keep)];
            if (cut != 0) m.Heap.StorePointer(cut + 16, 0);        // cut a cross link: the old word is shaded
        }
    }
}
