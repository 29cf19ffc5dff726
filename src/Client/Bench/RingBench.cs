using System.Diagnostics;
using System.Globalization;
using ClusterHeap.Client.Cli;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Bench;

/// <summary>
/// The ring workload of bench/WORKLOADS.md on the node heap, in process, with no Orleans: the same
/// arguments and the same steps as the anchor ring.c, so ns/op compares one for one with glibc, mimalloc,
/// jemalloc, tcmalloc and Go run by anchors.sh. As in ring.c, the untimed fill uses <c>-size</c> objects.
/// One thread owns the mcache and frees through it (MCache.Free), as C's free on the allocating thread goes
/// to that thread's cache.
/// </summary>
public sealed record RingOptions(long Size = 64, long Min = 0, long Max = 0, long Live = 10_000, long Ops = 10_000_000,
    bool Random = false, ulong Seed = 1, long ArenaSize = HeapLayout.DefaultArenaSize)
{
    /// <summary>Fails with a usage error on a combination the options' own parsers cannot see.</summary>
    public RingOptions Validate()
    {
        RingOptions o = this;
        if (o.Size <= 0) throw new UsageException("--size must be at least 1 byte");
        if (o.Min < 0 || o.Max < o.Min || (o.Min > 0 && o.Max == 0))
            throw new UsageException("--min and --max: give both, with 1 <= min <= max");
        return o;
    }
}

public sealed record RingResult(RingOptions Options, double NsPerOp, long ManagedBytes, MemStats Stats, VerifyReport Verify)
{
    public string Line()
    {
        RingOptions o = Options;
        return string.Create(CultureInfo.InvariantCulture,
            $"clusterheap ring size={o.Size} min={o.Min} max={o.Max} live={o.Live} ops={o.Ops} ns/op={NsPerOp:F2} " +
            $"heapsys={Stats.HeapSys} heapinuse={Stats.HeapInuse} heapalloc={Stats.HeapAlloc} objects={Stats.HeapObjects} " +
            $"refills={Stats.Refills} managed_alloc_bytes={ManagedBytes} verify={(Verify.Ok ? "ok" : "BROKEN")}");
    }
}

public static unsafe class RingBench
{
    public static RingResult Run(RingOptions o)
    {
        using var heap = NodeHeap.Create(new HeapOptions { ArenaSize = o.ArenaSize, BackgroundScavenger = false });
        MCache cache = heap.CreateCache();
        nuint[] ring = new nuint[o.Live];
        for (long i = 0; i < o.Live; i++) ring[i] = cache.Malloc((nuint)o.Size);

        ulong x = o.Seed;
        long span = o.Max - o.Min + 1;
        long before = GC.GetAllocatedBytesForCurrentThread();
        long start = Stopwatch.GetTimestamp();
        Loop(heap, cache, ring, o, ref x, span);
        long ticks = Stopwatch.GetTimestamp() - start;
        long managed = GC.GetAllocatedBytesForCurrentThread() - before;

        double ns = ticks * (1e9 / Stopwatch.Frequency) / o.Ops;
        heap.ReleaseCache(cache);
        MemStats stats = heap.ReadMemStats();
        VerifyReport verify = heap.Verify();
        return new RingResult(o, ns, managed, stats, verify);
    }

    // Compiled fully optimized from the start: the timed loop runs once, so tiering would time tier-0 code.
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.AggressiveOptimization | System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    private static void Loop(NodeHeap heap, MCache cache, nuint[] ring, RingOptions o, ref ulong x, long span)
    {
        long live = o.Live, ops = o.Ops, size = o.Size, min = o.Min;
        bool random = o.Random;
        for (long i = 0; i < ops; i++)
        {
            long s = size;
            if (min > 0)
            {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                s = min + (long)(x % (ulong)span);
            }
            long slot = i % live;
            if (random)
            {
                x ^= x << 13; x ^= x >> 7; x ^= x << 17;
                slot = (long)(x % (ulong)live);
            }
            cache.Free(ring[slot]);
            nuint p = cache.Malloc((nuint)s);
            *(byte*)p = (byte)i;
            ring[slot] = p;
        }
    }
}
