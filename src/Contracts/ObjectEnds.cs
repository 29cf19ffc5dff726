using System.Runtime.InteropServices;

namespace ClusterHeap.Contracts;

// The calls that carry more work than one step (issue 10): an allocation that carries each object's
// first contents, and a checked read that frees in the same call. Both speak of an object's "ends".
//
// An object's ends are 16 bytes, E[0..16):
//   size > 16:   E[0..8)  are its first 8 bytes, E[8..16) its last 8;
//   size <= 16:  E[0..size) are the whole object (E[size..16) is not stored and reads back as zero).
// Every array travels as one byte block (little-endian), which Orleans copies in one piece.

/// <summary>The 16-byte ends of objects; see the comment at the top of ObjectEnds.cs.</summary>
public static class ObjectEnds
{
    /// <summary>Bytes of ends per object.</summary>
    public const int Size = 16;

    /// <summary>Bytes at each end of an object of more than <see cref="Size"/> bytes.</summary>
    public const int Half = Size / 2;

    /// <summary>
    /// Where the ends of an object of <paramref name="size"/> bytes lie: the head's length (bytes at offset 0,
    /// taken from E[0..)) and the tail's length (bytes ending at the object's end, taken from E[8..16)).
    /// </summary>
    public static (int Head, int Tail) Parts(long size) => size > Size ? (Half, Half) : ((int)Math.Max(0, size), 0);
}

/// <summary>
/// Allocate one object per size, in order, and write each one's ends before answering (one call instead
/// of a malloc and a write). The reply is a <see cref="MallocBatchResult"/>: allocation stops at the first
/// failure, and the objects it returns hold their ends.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.StampedMallocRequest")]
public sealed class StampedMallocRequest
{
    /// <summary>A request for objects of <paramref name="sizes"/> whose ends are <paramref name="ends"/> (16 bytes each).</summary>
    public StampedMallocRequest(ReadOnlySpan<long> sizes, byte[] ends, ObjectKind kind)
    {
        if (ends.Length != sizes.Length * ObjectEnds.Size)
        {
            throw new ArgumentException($"{sizes.Length} sizes need {sizes.Length * ObjectEnds.Size} bytes of ends, not {ends.Length}", nameof(ends));
        }

        PackedSizes = MemoryMarshal.AsBytes(sizes).ToArray();
        Ends = ends;
        Kind = kind;
    }

    /// <summary>Number of objects asked for.</summary>
    public int Count => PackedSizes.Length / sizeof(long);

    /// <summary>The sizes as they travel: 8 bytes each, little-endian (use <see cref="Sizes"/>).</summary>
    [Id(0)]
    public byte[] PackedSizes { get; init; }

    /// <summary>16 bytes per object, in order.</summary>
    [Id(1)]
    public byte[] Ends { get; init; }

    /// <summary>Noscan or pointer-bearing.</summary>
    [Id(2)]
    public ObjectKind Kind { get; init; }

    /// <summary>The sizes, without copying.</summary>
    public ReadOnlySpan<long> Sizes => MemoryMarshal.Cast<byte, long>(PackedSizes);
}

/// <summary>
/// Read the ends of each object, then free it (a checked read that frees, in one call). An object whose
/// read is refused is left alone. The sizes are those the caller allocated (the ends lie inside them).
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.EndsFreeRequest")]
public sealed class EndsFreeRequest
{
    /// <summary>Objects starting at <paramref name="pointers"/> of <paramref name="sizes"/> bytes.</summary>
    public EndsFreeRequest(ReadOnlySpan<HeapPointer> pointers, ReadOnlySpan<long> sizes)
    {
        if (pointers.Length != sizes.Length)
        {
            throw new ArgumentException($"{pointers.Length} pointers and {sizes.Length} sizes", nameof(sizes));
        }

        PackedPointers = MemoryMarshal.AsBytes(pointers).ToArray();
        PackedSizes = MemoryMarshal.AsBytes(sizes).ToArray();
    }

    /// <summary>Number of objects.</summary>
    public int Count => PackedPointers.Length / sizeof(ulong);

    /// <summary>The pointers as they travel (use <see cref="Pointers"/>).</summary>
    [Id(0)]
    public byte[] PackedPointers { get; init; }

    /// <summary>The sizes as they travel (use <see cref="Sizes"/>).</summary>
    [Id(1)]
    public byte[] PackedSizes { get; init; }

    /// <summary>The pointers, without copying.</summary>
    public ReadOnlySpan<HeapPointer> Pointers => MemoryMarshal.Cast<byte, HeapPointer>(PackedPointers);

    /// <summary>The sizes, without copying.</summary>
    public ReadOnlySpan<long> Sizes => MemoryMarshal.Cast<byte, long>(PackedSizes);
}

/// <summary>
/// Reply of <see cref="EndsFreeRequest"/>: 16 bytes of ends per object, in request order, and the errors.
/// Object i was read and freed when <see cref="ErrorOf"/>(i) is null. An item whose read was refused
/// has zero ends and was not freed; one whose read succeeded but whose free was refused has its ends.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.EndsFreeResult")]
public sealed class EndsFreeResult(byte[] ends, HeapError?[]? errors)
{
    /// <summary>16 bytes per object.</summary>
    [Id(0)]
    public byte[] Ends { get; init; } = ends;

    /// <summary>One entry per object, or null when every object was read and freed.</summary>
    [Id(1)]
    public HeapError?[]? Errors { get; init; } = errors;

    /// <summary>Object <paramref name="i"/>'s ends.</summary>
    public ReadOnlySpan<byte> EndsOf(int i) => Ends.AsSpan(i * ObjectEnds.Size, ObjectEnds.Size);

    /// <summary>Why object <paramref name="i"/> was not read or not freed, or null.</summary>
    public HeapError? ErrorOf(int i) => Errors?[i];
}
