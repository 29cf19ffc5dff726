using System.Buffers.Binary;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// The stress cookie (bench/WORKLOADS.md): a 64-bit value derived from the object's pointer and a sequence
/// number, written right after allocation and checked before free and at the end of a run. An object of
/// 16 bytes or less holds the value and its complement over its whole length; a larger one holds the
/// value in its first 8 bytes and the complement in its last 8, so both ends of every object are checked.
/// </summary>
public static class Cookie
{
    public const int Whole = 16;

    /// <summary>splitmix64's finalizer over pointer and sequence: every bit of both moves every bit of the cookie.</summary>
    public static ulong Value(HeapPointer p, ulong seq)
    {
        ulong z = p.Value ^ (seq * 0x9E3779B97F4A7C15UL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>The writes that stamp <paramref name="o"/> (one for small objects, head and tail otherwise).</summary>
    public static IEnumerable<WriteRequest> Writes(Obj o)
    {
        ulong v = Value(o.Pointer, o.Seq);
        if (o.Size <= Whole)
        {
            yield return new WriteRequest(o.Pointer, Pattern(v)[..o.Size]);
            yield break;
        }
        yield return new WriteRequest(o.Pointer, Bytes(v));
        yield return new WriteRequest(o.Pointer.Offset(o.Size - 8), Bytes(~v));
    }

    /// <summary>The reads that check <paramref name="o"/>, in the same order as <see cref="Writes"/>.</summary>
    public static IEnumerable<ReadRequest> Reads(Obj o)
    {
        if (o.Size <= Whole)
        {
            yield return new ReadRequest(o.Pointer, o.Size);
            yield break;
        }
        yield return new ReadRequest(o.Pointer, 8);
        yield return new ReadRequest(o.Pointer.Offset(o.Size - 8), 8);
    }

    /// <summary>Number of requests <see cref="Writes"/> and <see cref="Reads"/> give for <paramref name="o"/>.</summary>
    public static int Parts(Obj o) => o.Size <= Whole ? 1 : 2;

    /// <summary>True when <paramref name="data"/> (read part <paramref name="part"/>) is what the cookie says.</summary>
    public static bool Matches(Obj o, int part, ReadOnlySpan<byte> data)
    {
        ulong v = Value(o.Pointer, o.Seq);
        if (o.Size <= Whole) return data.SequenceEqual(Pattern(v).AsSpan(0, o.Size));
        return data.Length == 8 && BinaryPrimitives.ReadUInt64LittleEndian(data) == (part == 0 ? v : ~v);
    }

    private static byte[] Bytes(ulong v)
    {
        var b = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        return b;
    }

    private static byte[] Pattern(ulong v)
    {
        var b = new byte[16];
        BinaryPrimitives.WriteUInt64LittleEndian(b, v);
        BinaryPrimitives.WriteUInt64LittleEndian(b.AsSpan(8), ~v);
        return b;
    }
}
