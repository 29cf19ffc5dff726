namespace ClusterHeap.Contracts;

// Requests and replies of the batch calls. A batch reply carries one HeapError per item
// (null = that item succeeded), so one bad pointer never hides the fate of the others.

/// <summary>
/// Reply of a batch malloc: the pointers allocated, in request order. Allocation stops at the first
/// failure (the rest would fail the same way): then <see cref="Pointers"/> is shorter than the request
/// and <see cref="Error"/> says why.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.MallocBatchResult")]
public sealed record MallocBatchResult(
    [property: Id(0)] HeapPointer[] Pointers,
    [property: Id(1)] HeapError? Error);

/// <summary>Read <paramref name="Length"/> bytes at <paramref name="Pointer"/> (which may be interior).</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.ReadRequest")]
public readonly record struct ReadRequest(
    [property: Id(0)] HeapPointer Pointer,
    [property: Id(1)] int Length);

/// <summary>One item of a batch read: the bytes, or the error (then <see cref="Data"/> is empty).</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.ReadResult")]
public sealed record ReadResult(
    [property: Id(0)] byte[] Data,
    [property: Id(1)] HeapError? Error);

/// <summary>Write <paramref name="Data"/> at <paramref name="Pointer"/> (which may be interior).</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.WriteRequest")]
public sealed record WriteRequest(
    [property: Id(0)] HeapPointer Pointer,
    [property: Id(1)] byte[] Data);
