namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// Mutator threads racing with the collector, shared by the tests that need them (GcConcurrencyTests: cycles the
/// pacer starts; CheckmarkTests: concurrent marks under checkmark). Each mutator owns a table of <c>keep</c> roots
/// over cookie-stamped 32-byte typed nodes (word 1 holds the cookie) and runs its test's step <c>steps</c> times,
/// 100 steps per mutator scope. At the end every node reachable from its roots through the test's link words still
/// holds its cookie and its blob (a noscan object a pointer word may hold) is still allocated; then the roots and
/// the cache are released, so a last cycle must leave the heap empty.
/// </summary>
internal static unsafe class RacingMutators
{
    /// <summary>What one step of a mutator works with.</summary>
    public sealed class Mutator(NodeHeap heap, MCache cache, RootSet roots, Random rng, int keep)
    {
        public NodeHeap Heap { get; } = heap;
        public MCache Cache { get; } = cache;
        public RootSet Roots { get; } = roots;
        public Random Rng { get; } = rng;
        public int Keep { get; } = keep;
    }

    /// <summary>The cookie a node at <paramref name="n"/> holds in word 1.</summary>
    public static ulong Cookie(nuint n) => 0xC0DEUL << 48 ^ (ulong)n * 0x9E3779B97F4A7C15UL >> 16;

    public static void CheckCookie(nuint n, string what = "node")
    {
        if (((ulong*)n)[1] != Cookie(n)) throw new InvalidOperationException($"{what} {TestHeap.Hex(n)} lost its cookie");
    }

    /// <summary>
    /// Runs <paramref name="threads"/> threads, thread t running <paramref name="mutator"/>(t); while any runs,
    /// calls <paramref name="meanwhile"/> until it returns false; then joins them (5 minutes at most) and fails
    /// with every thread's exception.
    /// </summary>
    public static void Race(int threads, Action<int> mutator, Func<bool>? meanwhile = null)
    {
        var errors = new List<string>();
        Thread[] all = [.. Enumerable.Range(0, threads).Select(t => new Thread(() =>
        {
            try
            {
                mutator(t);
            }
            catch (Exception e)
            {
                lock (errors) errors.Add($"thread {t}: {e}");
            }
        }))];
        foreach (Thread th in all) th.Start();
        while (meanwhile is not null && all.Any(th => th.IsAlive) && meanwhile())
        {
        }
        foreach (Thread th in all) Assert.True(th.Join(TimeSpan.FromMinutes(5)), "a mutator did not finish");
        Assert.True(errors.Count == 0, string.Join("\n", errors.Select(e => e.Length > 800 ? e[..800] : e)));
    }

    /// <summary>
    /// One mutator, seeded by <paramref name="seed"/>: <paramref name="keep"/> empty roots, <paramref name="steps"/>
    /// calls of <paramref name="step"/> in scopes of 100, then the check of every node reachable through
    /// <paramref name="links"/> (and of the blob in word <paramref name="blobWord"/>) and the release.
    /// </summary>
    public static void Run(NodeHeap heap, int seed, int steps, int keep, Action<Mutator> step, int[] links, int blobWord)
    {
        var m = new Mutator(heap, heap.CreateCache(), heap.CreateRoots(), new Random(seed), keep);
        using (heap.EnterMutator())
        {
            for (int i = 0; i < keep; i++) m.Roots.Push(0);
        }
        for (int done = 0; done < steps; done += 100)
        {
            using (heap.EnterMutator())
            {
                for (int k = 0; k < 100; k++) step(m);
            }
        }
        using (heap.EnterMutator())
        {
            CheckReachable(m, links, blobWord);
            m.Roots.Clear();
        }
        heap.ReleaseRoots(m.Roots);
        heap.ReleaseCache(m.Cache);
    }

    private static void CheckReachable(Mutator m, int[] links, int blobWord)
    {
        var seen = new HashSet<nuint>();
        var work = new Stack<nuint>();
        for (int i = 0; i < m.Keep; i++)
        {
            if (m.Roots[i] != 0) work.Push((nuint)m.Roots[i]);
        }
        while (work.Count > 0)
        {
            nuint n = work.Pop();
            if (n == 0 || !seen.Add(n)) continue;
            CheckCookie(n, "node reachable from the roots");
            ulong blob = ((ulong*)n)[blobWord];
            if (blob != 0 && m.Heap.CheckRange((nuint)blob, 1, out _) != PointerError.None) throw new InvalidOperationException($"node {TestHeap.Hex(n)}'s blob was reclaimed");
            foreach (int word in links) work.Push((nuint)((ulong*)n)[word]);
        }
    }
}
