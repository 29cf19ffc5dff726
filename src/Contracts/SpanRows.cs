namespace ClusterHeap.Contracts;

// What a node's arena looks like from outside: the span listing (one row per span, as the heap's
// GetSpans reports it) and the heap map (the same spans reduced to what the client draws).

/// <summary>One span of a node's arena.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.SpanRow")]
public sealed record SpanRow(
    [property: Id(0)] ulong Start,
    [property: Id(1)] int Pages,
    [property: Id(2)] bool InUse,
    [property: Id(3)] int SizeClass,
    [property: Id(4)] bool Noscan,
    [property: Id(5)] int ElemSize,
    [property: Id(6)] int Objects,
    [property: Id(7)] int Live,
    [property: Id(8)] string Cache,
    [property: Id(9)] long LeaseId,
    [property: Id(10)] int ReleasedPages)
{
    /// <summary>An in-use span the node's last collection left to sweep: Live still counts its unreached objects.</summary>
    [Id(11)] public bool Unswept { get; init; }
}

/// <summary>State of a run of pages in the heap map picture.</summary>
[GenerateSerializer, Alias("ClusterHeap.MapState")]
public enum MapState
{
    /// <summary>An in-use span (occupancy = Live / Objects).</summary>
    InUse = 0,
    /// <summary>An in-use span lent to another node's mcache.</summary>
    Leased = 1,
    /// <summary>A free run still committed.</summary>
    Free = 2,
    /// <summary>A free run returned to the OS by the scavenger.</summary>
    Released = 3,
    /// <summary>An in-use span the last collection left to sweep (occupancy counts the objects it did not reach).</summary>
    Unswept = 4,
}

/// <summary>One span in the heap map: where, how big, which class, how full.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.HeapMapRow")]
public sealed record HeapMapRow(
    [property: Id(0)] ulong Start,
    [property: Id(1)] int Pages,
    [property: Id(2)] int SizeClass,
    [property: Id(3)] int Objects,
    [property: Id(4)] int Live,
    [property: Id(5)] MapState State);

/// <summary>A node's heap map: the arena bounds and its spans in address order.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.HeapMap")]
public sealed record HeapMap(
    [property: Id(0)] string Node,
    [property: Id(1)] int Slot,
    [property: Id(2)] ulong ArenaStart,
    [property: Id(3)] ulong ArenaUsed,
    [property: Id(4)] ulong ArenaEnd,
    [property: Id(5)] int PageSize,
    [property: Id(6)] HeapMapRow[] Rows);

/// <summary>A verifier run on one node (or the cluster tier, Node = "cluster").</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.VerifyResult")]
public sealed record VerifyResult(
    [property: Id(0)] string Node,
    [property: Id(1)] bool Ok,
    [property: Id(2)] string? Problem,
    [property: Id(3)] string Checked);
