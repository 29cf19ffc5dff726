namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// Cycles started by the pacer from inside one mutator's Malloc while other mutators run their own scopes: the starting
/// thread steps out of its scope for the cycle, the others are stopped between their scopes, and nothing any of them
/// holds through its roots is lost.
/// </summary>
public unsafe class GcConcurrencyTests
{
    [Fact]
    public void Four_mutators_in_scopes_keep_their_rooted_lists_through_pacer_cycles()
    {
        using var heap = NodeHeap.Create(new HeapOptions
        {
            ArenaSize = 256 * TestHeap.MiB,
            Slot = 10,
            BackgroundScavenger = false,
            Collector = true,
            GcPercent = 50,
        });
        const int Threads = 4, Steps = 60_000, Keep = 2000;
        RacingMutators.Race(Threads, t => RacingMutators.Run(heap, t, Steps, Keep, ReplaceOne, links: [0], blobWord: 2));
        MemStats s = heap.ReadMemStats();
        Assert.True(s.NumGC > 0, "no cycle ran");
        heap.Collect();
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);        // every thread released its roots at the end
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>
    /// One step over a ring of rooted typed 32-byte nodes: word 0 points at the node it replaced (so garbage chains hang
    /// off live nodes until overwritten), word 1 holds its cookie, word 2 sometimes a noscan blob. The step replaces one
    /// node, checking the cookie of the one it drops, and now and then drops a whole chain.
    /// </summary>
    private static void ReplaceOne(RacingMutators.Mutator m)
    {
        int slot = m.Rng.Next(m.Keep);
        nuint old = (nuint)m.Roots[slot];
        if (old != 0) RacingMutators.CheckCookie(old);
        // A precise collector's contract: n is rooted (and holds old) before the next allocation, which may run a cycle.
        nuint n = m.Cache.MallocTyped(32, [0b0101]);        // words 0 and 2 are pointers
        ((ulong*)n)[0] = old;
        m.Roots[slot] = n;
        ((ulong*)n)[1] = RacingMutators.Cookie(n);
        ((ulong*)n)[2] = m.Rng.Next(4) == 0 ? (ulong)m.Cache.Malloc((nuint)m.Rng.Next(1, 600), noscan: true) : 0;
        if (m.Rng.Next(50) == 0) m.Roots[m.Rng.Next(m.Keep)] = 0;    // drop a whole chain
    }
}
