using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using ClusterHeap.Client.Cli;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Bench;

/// <summary>
/// binary-trees on one collected node heap, in process, the shape of bench/anchors/binarytrees.go step for step: a
/// stretch tree of depth max+1, a long-lived tree of depth max, then for d = 4, 6, …, max, 2^(max-d+4) trees of depth d,
/// each built, walked (its node count summed into the checksum) and dropped. A node is one 16-byte typed allocation with
/// two pointer words (Go's 16-byte size class, scanned). There are no frees: the collector reclaims the dropped trees.
/// <para>
/// The mutator's roots are visible to the collector, as a precise collector requires: <c>Build</c> keeps the node it is
/// filling on a root set used as a shadow stack (what Go's stack maps give its collector), so a cycle started by an
/// allocation deep in the recursion finds every node under construction; the long-lived tree is a root while the
/// others are built. Pointers on .NET's own stack between an allocation and the next one are never live across it.
/// </para>
/// </summary>
public sealed record BinaryTreesOptions(int Depth = 16, int GcPercent = 100, long ArenaSize = 64L << 30, TextWriter? Trace = null,
    string Mode = "concurrent")
{
    /// <summary>The --mode values: stop the world; concurrent with the dedicated mark worker thread; concurrent with mutator assists only.</summary>
    public static readonly string[] Modes = ["stw", "concurrent", "assist"];

    public BinaryTreesOptions Validate()
    {
        if (!Modes.Contains(Mode)) throw new UsageException($"--mode must be one of {string.Join(", ", Modes)}, got '{Mode}'");
        if (Depth < 4 || Depth > 28) throw new UsageException($"--depth must be 4..28 (binary-trees starts at depth 4; a tree of depth 28 is 8 GiB of nodes), got {Depth}");
        if (GcPercent < -1) throw new UsageException($"--gogc must be a percentage, or -1 for off, got {GcPercent}");
        return this;
    }
}

public sealed record BinaryTreesResult(BinaryTreesOptions Options, long Checksum, double Ms, MemStats Stats,
    double PauseP50Us, double PauseMaxUs, long PauseJitMethods, VerifyReport Verify)
{
    /// <summary>The line Go's binarytrees.go prints, with clusterheap's name, the methods compiled inside pauses (pause_jit: GcCycle.PauseJitMethods summed) and the verifier.</summary>
    public string Line() => string.Create(CultureInfo.InvariantCulture,
        $"clusterheap binarytrees depth={Options.Depth} mode={Options.Mode} checksum={Checksum} ms={Ms:F1} heapsys={Stats.HeapSys} numgc={Stats.NumGC} " +
        $"pause_p50_us={PauseP50Us:F0} pause_max_us={PauseMaxUs:F0} pause_jit={PauseJitMethods} gccpu={Stats.GCCPUFraction:F3} verify={(Verify.Ok ? "ok" : "BROKEN")}");

    /// <summary>The checksum binary-trees must print for <paramref name="depth"/>: node counts, 2^(d+1) - 1 per tree.</summary>
    public static long ExpectedChecksum(int depth)
    {
        static long Nodes(int d) => (1L << (d + 1)) - 1;
        long sum = Nodes(depth + 1) + Nodes(depth);
        for (int d = 4; d <= depth; d += 2) sum += (1L << (depth - d + 4)) * Nodes(d);
        return sum;
    }
}

public static unsafe class BinaryTreesBench
{
    private static readonly ulong[] NodeMask = [0b11];     // both words of a node are pointers

    public static BinaryTreesResult Run(BinaryTreesOptions o)
    {
        long pauseJit = 0;                                    // methods compiled inside pauses, summed over the cycles
        using var heap = NodeHeap.Create(new HeapOptions
        {
            ArenaSize = o.ArenaSize,
            Collector = true,
            GcPercent = o.GcPercent,
            GcMode = o.Mode == "stw" ? GcMode.StopTheWorld : GcMode.Concurrent,
            MarkWorker = o.Mode == "concurrent",
            OnGcCycle = cycle =>
            {
                pauseJit += cycle.PauseJitMethods;
                o.Trace?.WriteLine(cycle.Trace);
            },
        });
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        long start = Stopwatch.GetTimestamp();
        long sum = Trees(heap, cache, roots, o.Depth);
        double ms = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        MemStats stats = heap.ReadMemStats();
        double[] pauses = [.. stats.RecentPausesNs.Select(ns => ns / 1e3).Order()];
        double p50 = pauses.Length == 0 ? 0 : pauses[pauses.Length / 2];
        double max = pauses.Length == 0 ? 0 : pauses[^1];
        VerifyReport verify = heap.Verify();
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(cache);
        return new BinaryTreesResult(o, sum, ms, stats, p50, max, pauseJit, verify);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization | MethodImplOptions.NoInlining)]
    private static long Trees(NodeHeap h, MCache c, RootSet roots, int max)
    {
        long sum = Check(Build(h, c, roots, max + 1));         // nothing allocates between the build and the walk
        nuint longLived = Build(h, c, roots, max);
        roots.Push(longLived);
        for (int d = 4; d <= max; d += 2)
        {
            long iters = 1L << (max - d + 4);
            for (long i = 0; i < iters; i++) sum += Check(Build(h, c, roots, d));
        }
        sum += Check(longLived);
        roots.Pop();
        return sum;
    }

    /// <summary>A tree of depth <paramref name="d"/>; the node being filled is a root until both children hang from it.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static nuint Build(NodeHeap h, MCache c, RootSet roots, int d)
    {
        nuint n = c.MallocTyped(16, NodeMask);
        if (d == 0) return n;
        roots.Push(n);
        nuint left = Build(h, c, roots, d - 1);
        h.StorePointer(n, left);                               // Go's write barrier sits on these stores too
        nuint right = Build(h, c, roots, d - 1);
        h.StorePointer(n + 8, right);
        roots.Pop();
        return n;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static long Check(nuint n)
    {
        nuint left = ((nuint*)n)[0];
        return left == 0 ? 1 : 1 + Check(left) + Check(((nuint*)n)[1]);
    }
}
