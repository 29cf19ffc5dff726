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
        var errors = new List<string>();
        Thread[] threads = Enumerable.Range(0, Threads).Select(t => new Thread(() =>
        {
            try
            {
                Mutate(heap, t, Steps, Keep);
            }
            catch (Exception e)
            {
                lock (errors) errors.Add($"thread {t}: {e}");
            }
        })).ToArray();
        foreach (Thread th in threads) th.Start();
        foreach (Thread th in threads) Assert.True(th.Join(TimeSpan.FromMinutes(5)), "a mutator did not finish");
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(e => e.Length > 600 ? e[..600] : e)));
        MemStats s = heap.ReadMemStats();
        Assert.True(s.NumGC > 0, "no cycle ran");
        heap.Collect();
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);        // every thread released its roots at the end
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>
    /// A ring of <paramref name="keep"/> rooted objects, each a typed 32-byte node: word 0 points at the node it replaced
    /// (so garbage chains hang off live nodes until overwritten), word 1 holds its cookie. Every step replaces one, and
    /// checks the cookie of the one it drops.
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
                    if (old != 0 && ((ulong*)old)[1] != Cookie(old)) throw new InvalidOperationException($"node {TestHeap.Hex(old)} lost its cookie");
                    // A precise collector's contract: n is rooted (and holds old) before the next allocation, which may
                    // run a cycle.
                    nuint n = cache.MallocTyped(32, [0b0101]);        // words 0 and 2 are pointers
                    ((ulong*)n)[0] = old;
                    roots[slot] = n;
                    ((ulong*)n)[1] = Cookie(n);
                    ((ulong*)n)[2] = rng.Next(4) == 0 ? (ulong)cache.Malloc((nuint)rng.Next(1, 600), noscan: true) : 0;
                    if (rng.Next(50) == 0) roots[rng.Next(keep)] = 0;    // drop a whole chain
                }
            }
        }
        using (heap.EnterMutator())
        {
            for (int i = 0; i < keep; i++)
            {
                for (nuint n = (nuint)roots[i]; n != 0; n = (nuint)((ulong*)n)[0])
                {
                    if (((ulong*)n)[1] != Cookie(n)) throw new InvalidOperationException($"node {TestHeap.Hex(n)} on a rooted chain lost its cookie");
                }
            }
            roots.Clear();
        }
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(cache);
    }

    private static ulong Cookie(nuint n) => 0xC0DEUL << 48 ^ (ulong)n * 0x9E3779B97F4A7C15UL >> 16;
}
