namespace ClusterHeap.Heap;

/// <summary>One row of <see cref="MemStats.BySize"/>: objects of one size class (Go's MemStats.BySize).</summary>
public readonly record struct SizeClassStats(int SizeClass, int Size, long Mallocs, long Frees)
{
    public long Live => Mallocs - Frees;
}

/// <summary>
/// The heap fields of Go's runtime.MemStats for one node, plus ClusterHeap's own counters.
/// Objects are what callers allocated: each tiny object counts (in class 2, whose 16-byte blocks hold them);
/// bytes are slot bytes: a small object counts its size class, a tiny block 16 bytes while anything in it is
/// live or its mcache may still bump into it (an open block with every object freed still counts: HeapAlloc 16 B
/// per such mcache with HeapObjects 0), a large object its pages. Slots lent to remote mcaches count here, on the node whose arena holds them.
/// </summary>
public sealed record MemStats
{
    /// <summary>Bytes of live objects (= HeapAlloc).</summary>
    public long Alloc => HeapAlloc;
    /// <summary>Cumulative bytes allocated (slot bytes, including lent slots).</summary>
    public long TotalAlloc { get; init; }
    /// <summary>Bytes obtained from the OS: heap arena mapped + spans array + bitmap + span structs.</summary>
    public long Sys { get; init; }
    public long Mallocs { get; init; }
    public long Frees { get; init; }
    public long HeapAlloc { get; init; }
    /// <summary>Arena bytes mapped (grown into).</summary>
    public long HeapSys { get; init; }
    /// <summary>Bytes in free runs (including released ones).</summary>
    public long HeapIdle { get; init; }
    /// <summary>Bytes in in-use spans.</summary>
    public long HeapInuse { get; init; }
    /// <summary>Bytes of free runs returned to the OS.</summary>
    public long HeapReleased { get; init; }
    public long HeapObjects => Mallocs - Frees;
    public long TinyAllocs { get; init; }
    public required IReadOnlyList<SizeClassStats> BySize { get; init; }

    public long SpansSys { get; init; }
    public long BitmapSys { get; init; }
    public long ArenaSize { get; init; }
    public long GrowthLimit { get; init; }
    /// <summary>Spans handed to mcaches (refills, Go's mcentral.cacheSpan calls).</summary>
    public long Refills { get; init; }
    public long LeasesLent { get; init; }
    public long LeasesReturned { get; init; }
    public long LeasesReclaimed { get; init; }
    public int ActiveLeases { get; init; }
    public long LargeObjects { get; init; }
    public long LargeBytes { get; init; }
    public long ScavengedTotal { get; init; }
    /// <summary>
    /// Idle slots waiting on mcaches' free stacks, not in HeapAlloc; their slots keep their spans in use. Mostly freed
    /// objects (counted in Frees); on the 16-byte noscan stack also dead tiny blocks, whose objects counted in Frees
    /// one by one.
    /// </summary>
    public long StackedObjects { get; init; }
    public long StackedBytes { get; init; }

    // The collector (NodeHeap.Gc.cs), with Go's names.
    /// <summary>Completed collection cycles.</summary>
    public long NumGC { get; init; }
    /// <summary>Cycles run by NodeHeap.Collect or before an allocation failed, not by the pacer.</summary>
    public long NumForcedGC { get; init; }
    /// <summary>Stop-the-world pause time of every cycle, summed.</summary>
    public long PauseTotalNs { get; init; }
    /// <summary>The pauses of the last (up to 256) cycles, oldest first (Go keeps them in a ring, PauseNs).</summary>
    public IReadOnlyList<long> RecentPausesNs { get; init; } = [];
    /// <summary>The heap goal: the pacer starts a cycle when heap_live reaches it; long.MaxValue = never.</summary>
    public long NextGC { get; init; } = long.MaxValue;
    /// <summary>When the last cycle ended, in nanoseconds since 1970 (0: none yet).</summary>
    public long LastGC { get; init; }
    /// <summary>Collector time (pauses, background sweeping) over wall time × processors since the heap was created.</summary>
    public double GCCPUFraction { get; init; }
    /// <summary>Bytes the last mark found live (Go's heap_marked).</summary>
    public long HeapMarked { get; init; }
    /// <summary>The pacer's heap_live: marked bytes plus allocation since (MHeap.HeapLive); kept only with HeapOptions.Collector on.</summary>
    public long HeapLive { get; init; }
    /// <summary>Objects reclaimed by sweeping (also counted in Frees).</summary>
    public long GcFrees { get; init; }
    /// <summary>Spans still wait to be swept since the last cycle.</summary>
    public bool SweepPending { get; init; }

}
