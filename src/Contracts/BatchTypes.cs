namespace ClusterHeap.Contracts;

// Requests and replies of the batch calls. A batch reply carries one HeapError per item
// (null = that item succeeded), so one bad pointer never hides the fate of the others.

/// <summary>
/// Reply of a batch malloc: the pointers allocated, in request order. Allocation stops at the first
/// failure (the rest would fail the same way): then <see cref="Pointers"/> is shorter than the request
/// and <see cref="Error"/> says why.
/// </summary>
/// <remarks>
/// On the wire the pointers travel as one byte block (8 bytes each, little-endian), which Orleans
/// copies in one piece instead of encoding 1024 structs field by field.
/// </remarks>
[GenerateSerializer, Immutable, Alias("ClusterHeap.MallocBatchResult")]
public sealed class MallocBatchResult
{
    [NonSerialized]
    private HeapPointer[]? _pointers;

    /// <summary>Most objects one MallocBatch or MallocSizes call may ask for (8 MiB of pointers in the reply).</summary>
    public const int MaxCount = 1 << 20;

    /// <summary>A reply with <paramref name="pointers"/> and, when the batch stopped early, <paramref name="error"/>.</summary>
    public MallocBatchResult(HeapPointer[] pointers, HeapError? error)
    {
        _pointers = pointers;
        PackedPointers = System.Runtime.InteropServices.MemoryMarshal.AsBytes(pointers.AsSpan()).ToArray();
        Error = error;
    }

    /// <summary>The pointers allocated, in request order.</summary>
    public HeapPointer[] Pointers => _pointers ??= System.Runtime.InteropServices.MemoryMarshal.Cast<byte, HeapPointer>(PackedPointers).ToArray();

    /// <summary>The pointers as they travel: 8 bytes each, little-endian (use <see cref="Pointers"/>).</summary>
    [Id(0)]
    public byte[] PackedPointers { get; init; }

    /// <summary>Why the batch stopped early, or null when every object was allocated.</summary>
    [Id(1)]
    public HeapError? Error { get; init; }
}

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

/// <summary>
/// Many pointers in one argument, carried as one byte block (8 bytes each, little-endian) so Orleans
/// copies them in one piece. A <c>HeapPointer[]</c> converts implicitly.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.PointerBatch")]
public sealed class PointerBatch
{
    [NonSerialized]
    private HeapPointer[]? _pointers;

    /// <summary>A batch of <paramref name="pointers"/> (not copied again; do not change the array afterwards).</summary>
    public PointerBatch(HeapPointer[] pointers)
    {
        _pointers = pointers;
        Packed = System.Runtime.InteropServices.MemoryMarshal.AsBytes(pointers.AsSpan()).ToArray();
    }

    /// <summary>The pointers, in order.</summary>
    public HeapPointer[] Pointers => _pointers ??= System.Runtime.InteropServices.MemoryMarshal.Cast<byte, HeapPointer>(Packed).ToArray();

    /// <summary>Number of pointers.</summary>
    public int Count => Packed.Length / sizeof(ulong);

    /// <summary>The wire form (use <see cref="Pointers"/>).</summary>
    [Id(0)]
    public byte[] Packed { get; init; }

    /// <summary>Wraps an array.</summary>
    public static implicit operator PointerBatch(HeapPointer[] pointers) => new(pointers);
}
