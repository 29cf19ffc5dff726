namespace ClusterHeap.Contracts;

/// <summary>The kinds of failure a ClusterHeap call reports; each has its exception in ClusterHeapExceptions.cs.</summary>
[GenerateSerializer, Alias("ClusterHeap.HeapErrorKind")]
public enum HeapErrorKind
{
    /// <summary>No node could supply the memory: the cluster memory limit or every arena is full.</summary>
    OutOfMemory = 1,
    /// <summary>The address is not the start of a live object in its owner's arena (interior, foreign, double free...).</summary>
    InvalidPointer = 2,
    /// <summary>The owner is not a live node: stale generation, unknown slot or dead node.</summary>
    NodeGone = 3,
    /// <summary>A read or write reaches past the end of the object it starts in.</summary>
    OutOfBounds = 4,
    /// <summary>A malformed request (negative size, empty batch, wrong node).</summary>
    InvalidArgument = 5,
    /// <summary>
    /// The node needed the central heap (a growth grant, a lease) and could not reach it: it is moving to
    /// another silo or slow. Nothing was lost; the same request can be made again.
    /// </summary>
    Unavailable = 6,
}

/// <summary>
/// One failure, as it crosses the wire: batch replies carry one per item (null = success), single
/// calls throw <see cref="ToException"/>. <see cref="Message"/> is complete on its own: it names the
/// pointer, the reason and, for out of memory, the limit and the figures.
/// </summary>
/// <param name="Kind">What went wrong.</param>
/// <param name="Message">Readable text for the client.</param>
/// <param name="Pointer">The pointer concerned, or <see cref="HeapPointer.Null"/>.</param>
/// <param name="Reason">Machine-readable detail: the heap's PointerError name, the node-gone cause or the OOM reason.</param>
/// <param name="Requested">Bytes asked for (out of memory, out of bounds), else 0.</param>
/// <param name="Limit">The limit that was hit (cluster memory limit, arena size, object size), else 0.</param>
[GenerateSerializer, Immutable, Alias("ClusterHeap.HeapError")]
public sealed record HeapError(
    [property: Id(0)] HeapErrorKind Kind,
    [property: Id(1)] string Message,
    [property: Id(2)] HeapPointer Pointer,
    [property: Id(3)] string Reason,
    [property: Id(4)] long Requested,
    [property: Id(5)] long Limit)
{
    /// <summary>Node-gone reasons.</summary>
    public const string StaleGeneration = "StaleGeneration";
    /// <summary>No live node owns the slot.</summary>
    public const string UnknownSlot = "UnknownSlot";
    /// <summary>The owner died.</summary>
    public const string DeadNode = "DeadNode";

    /// <summary>Out of memory: <paramref name="reason"/> says which limit, with the figures.</summary>
    public static HeapError OutOfMemory(string reason, long requested, long limit, string detail) =>
        new(HeapErrorKind.OutOfMemory, $"out of memory ({reason}): {detail}", HeapPointer.Null, reason, requested, limit);

    /// <summary>The owner of <paramref name="pointer"/> is not live.</summary>
    public static HeapError NodeGone(HeapPointer pointer, string reason, string detail) =>
        new(HeapErrorKind.NodeGone, $"node gone for pointer {pointer} ({reason}): {detail}", pointer, reason, 0, 0);

    /// <summary>A grain pinned to <paramref name="node"/> cannot be placed: no active silo has that name.</summary>
    public static HeapError NodeNotActive(string node) =>
        new(HeapErrorKind.NodeGone, $"node gone: no active silo is named {node}", HeapPointer.Null, DeadNode, 0, 0);

    /// <summary>[pointer, pointer+length) leaves the object it starts in.</summary>
    public static HeapError OutOfBounds(HeapPointer pointer, long length, string detail) =>
        new(HeapErrorKind.OutOfBounds, $"out of bounds at {pointer}, {length} bytes: {detail}", pointer, "OutOfBounds", length, 0);

    /// <summary>The central heap could not be reached for <paramref name="what"/>; retry.</summary>
    public static HeapError Unavailable(string what, string detail) =>
        new(HeapErrorKind.Unavailable, $"central heap unavailable for {what}: {detail}", HeapPointer.Null, "Unavailable", 0, 0);

    /// <summary>A malformed request.</summary>
    public static HeapError InvalidArgument(string detail) =>
        new(HeapErrorKind.InvalidArgument, detail, HeapPointer.Null, "InvalidArgument", 0, 0);

    /// <summary>The typed exception a single call throws for this error.</summary>
    public ClusterHeapException ToException() => Kind switch
    {
        HeapErrorKind.OutOfMemory => new ClusterOutOfMemoryException(this),
        HeapErrorKind.InvalidPointer => new InvalidHeapPointerException(this),
        HeapErrorKind.NodeGone => new NodeGoneException(this),
        HeapErrorKind.OutOfBounds => new HeapOutOfBoundsException(this),
        _ => new ClusterHeapException(this),
    };

    /// <inheritdoc/>
    public override string ToString() => Message;
}
