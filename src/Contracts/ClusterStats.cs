namespace ClusterHeap.Contracts;

/// <summary>The central heap's view of the whole cluster: the sum row, per-node rows and the cluster tier.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.ClusterStats")]
public sealed record ClusterStats(
    [property: Id(0)] NodeStats Sum,
    [property: Id(1)] NodeStats[] Nodes,
    [property: Id(2)] long MemoryLimit,
    [property: Id(3)] long TotalGranted,
    [property: Id(4)] int ActiveLeases,
    [property: Id(5)] string[] Unreachable);
