using System.Buffers.Binary;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// The stress cookie (bench/WORKLOADS.md): a 64-bit value derived from the object's sequence number, carried
/// by the allocation itself as the object's ends (ObjectEnds.cs: the mcache writes them before it answers)
/// and checked by the read that frees the object, and at the end of a run. An object of 16 bytes or less
/// holds the value and its complement over its whole length; a larger one holds the value in its first
/// 8 bytes and the complement in its last 8, so both ends of every object are checked.
/// </summary>
/// <remarks>
/// Sequence numbers are unique in a run and start at a random point, so two objects never share a cookie:
/// an object overwritten by another (two live objects at one address), a read that reached the wrong
/// object or node, or memory left from an earlier run all fail the check. The cookie no longer mixes in
/// the pointer, since the ends travel with the malloc, before the pointer exists.
/// </remarks>
public static class Cookie
{
    /// <summary>Objects up to this size carry the cookie over their whole length.</summary>
    public const int Whole = ObjectEnds.Size;

    /// <summary>splitmix64's finalizer over the sequence number: every bit of it moves every bit of the cookie.</summary>
    public static ulong Value(ulong seq)
    {
        ulong z = seq * 0x9E3779B97F4A7C15UL;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    /// <summary>Writes <paramref name="o"/>'s 16 bytes of ends: the cookie, then its complement.</summary>
    public static void Ends(Obj o, Span<byte> ends)
    {
        ulong v = Value(o.Seq);
        BinaryPrimitives.WriteUInt64LittleEndian(ends, v);
        BinaryPrimitives.WriteUInt64LittleEndian(ends[ObjectEnds.Half..], ~v);
    }

    /// <summary>True when <paramref name="ends"/> (as read back, ObjectEnds.cs) are what <paramref name="o"/>'s cookie says.</summary>
    public static bool Matches(Obj o, ReadOnlySpan<byte> ends)
    {
        Span<byte> want = stackalloc byte[ObjectEnds.Size];
        Ends(o, want);
        (int head, int tail) = ObjectEnds.Parts(o.Size);
        return ends.Length == ObjectEnds.Size
            && ends[..head].SequenceEqual(want[..head])
            && ends.Slice(ObjectEnds.Half, tail).SequenceEqual(want.Slice(ObjectEnds.Half, tail));
    }
}
