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
        var errors = new List<string>();
        Thread[] threads = [.. Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            try
            {
                Mutate(heap, t, Steps, Keep);
            }
            catch (Exception e)
            {
                lock (errors) errors.Add($"thread {t}: {e}");
            }
        }))];
        foreach (Thread th in threads) th.Start();
        int forced = 0;
        while (threads.Any(th => th.IsAlive) && forced < 5)
        {
            heap.Collect();                                      // a whole concurrent cycle from outside the mutators
            forced++;
        }
        foreach (Thread th in threads) Assert.True(th.Join(TimeSpan.FromMinutes(5)), "a mutator did not finish");
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(e => e.Length > 800 ? e[..800] : e)));
        MemStats s = heap.ReadMemStats();
        Assert.True(s.NumGC >= 3, $"only {s.NumGC} cycles ran");
        Assert.True(heap.LastCycle!.Concurrent);
        heap.Collect();
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);        // every thread released its roots at the end
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>
    /// A table of <paramref name="keep"/> rooted 32-byte nodes: word 0 chains to the node it replaced, word 1 the cookie,
    /// word 2 a cross link set through the barrier (StorePointer) to another rooted node whose root is then often
    /// dropped — the object survives only through that link — and word 3 a noscan blob. Every node reachable through
    /// words 0 and 2 keeps its cookie.
    /// </summary>
    private static void Mutate(NodeHeap heap, int t, int steps, int keep)
    {
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        var rng = new Random(t);
        using (heap.EnterMutator())
        {
            for (int i = 0; i < keep; i++) roots.Push(0);
        }
        for (int step = 0; step < steps; step += 100)
        {
            using (heap.EnterMutator())
            {
                for (int k = step; k < step + 100; k++)
                {
                    int slot = rng.Next(keep);
                    nuint old = (nuint)roots[slot];
                    if (old != 0) CheckCookie(old);
                    nuint n = cache.MallocTyped(32, [0b1101]);
                    heap.StorePointer(n, rng.Next(10) == 0 ? 0 : old);           // sometimes a chain ends here
                    roots[slot] = n;
                    ((ulong*)n)[1] = Cookie(n);
                    if (rng.Next(4) == 0) heap.StorePointer(n + 24, cache.Malloc((nuint)rng.Next(1, 600), noscan: true));
                    int other = rng.Next(keep);
                    nuint target = (nuint)roots[other];
                    if (target != 0 && other != slot)
                    {
                        heap.StorePointer(n + 16, target);                   // hide target behind n ...
                        if (rng.Next(2) == 0) roots[other] = 0;              // ... and let go of its root
                    }
                    nuint m = (nuint)roots[rng.Next(keep)];
                    if (m != 0 && m != n && rng.Next(3) == 0)
                    {
                        nuint tail = (nuint)((ulong*)m)[0];
                        heap.StorePointer(n + 16, tail);                     // move m's chain behind n (born marked) ...
                        heap.StorePointer(m, 0);                             // ... and cut it from m: only the barrier tells
                    }
                    if (rng.Next(40) == 0) roots[rng.Next(keep)] = 0;        // drop a whole chain
                    if (rng.Next(8) == 0)
                    {
                        nuint cut = (nuint)roots[rng.Next(keep)];
                        if (cut != 0) heap.StorePointer(cut + 16, 0);        // cut a cross link: the old word is shaded
                    }
                }
            }
        }
        using (heap.EnterMutator())
        {
            var seen = new HashSet<nuint>();
            var work = new Stack<nuint>();
            for (int i = 0; i < keep; i++)
            {
                if (roots[i] != 0) work.Push((nuint)roots[i]);
            }
            while (work.Count > 0)
            {
                nuint n = work.Pop();
                if (n == 0 || !seen.Add(n)) continue;
                CheckCookie(n);
                ulong blob = ((ulong*)n)[3];
                if (blob != 0 && heap.CheckRange((nuint)blob, 1, out _) != PointerError.None) throw new InvalidOperationException($"node {TestHeap.Hex(n)}'s blob was reclaimed");
                work.Push((nuint)((ulong*)n)[0]);
                work.Push((nuint)((ulong*)n)[2]);
            }
            roots.Clear();
        }
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(cache);
    }

    private static void CheckCookie(nuint n)
    {
        if (((ulong*)n)[1] != Cookie(n)) throw new InvalidOperationException($"node {TestHeap.Hex(n)} lost its cookie");
    }

    private static ulong Cookie(nuint n) => 0xC0DEUL << 48 ^ (ulong)n * 0x9E3779B97F4A7C15UL >> 16;
}
