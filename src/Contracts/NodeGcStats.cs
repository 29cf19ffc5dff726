namespace ClusterHeap.Contracts;

/// <summary>
/// One node heap's collector, as its MemStats report it (Go's names: NumGC, PauseTotalNs, PauseNs, NextGC, LastGC,
/// GCCPUFraction, and heap_marked). These are the node's own cycles; a cycle the central heap coordinates counts
/// on every node it marked. <see cref="NodeStats.Sum"/> leaves it empty: node cycles do not add up to cluster cycles.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodeGcStats")]
public sealed record NodeGcStats
{
    /// <summary>Completed cycles on this node's heap.</summary>
    [Id(0)] public long NumGC { get; init; }
    /// <summary>Of those, cycles run on request or before an allocation failed (not by the pacer).</summary>
    [Id(1)] public long NumForcedGC { get; init; }
    /// <summary>Stop-the-world pause time of every cycle, summed.</summary>
    [Id(2)] public long PauseTotalNs { get; init; }
    /// <summary>The pauses of the last (up to 256) cycles, oldest first; the last one is cycle NumGC's.</summary>
    [Id(3)] public long[] RecentPausesNs { get; init; } = [];
    /// <summary>The heap goal: the pacer starts a cycle when heap_live reaches it; long.MaxValue = never (collector off).</summary>
    [Id(4)] public long NextGC { get; init; } = long.MaxValue;
    /// <summary>When the last cycle ended, nanoseconds since 1970 (0: none yet).</summary>
    [Id(5)] public long LastGC { get; init; }
    /// <summary>Collector time over wall time × processors since the heap was created.</summary>
    [Id(6)] public double GCCPUFraction { get; init; }
    /// <summary>Bytes the last mark found live (Go's heap_marked, runtime/metrics /gc/heap/live:bytes).</summary>
    [Id(7)] public long HeapMarked { get; init; }
    /// <summary>Objects reclaimed by sweeping (also counted in Frees).</summary>
    [Id(8)] public long GcFrees { get; init; }
    /// <summary>Spans still wait to be swept since the last cycle.</summary>
    [Id(9)] public bool SweepPending { get; init; }
}
