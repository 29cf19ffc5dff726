using System.Numerics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The tiny allocator's bookkeeping. Noscan objects smaller than 16 bytes are bump-allocated inside
/// 16-byte blocks (slots of the noscan class-2 span class), aligned by size as Go does. Each slot of a span of
/// that class has a 64-bit mask in <c>MSpan.TinyMasks</c>, in two 32-bit halves with different writers:
/// <code>
///   high half, written under the mcentral lock     low half, written by the owning mcache while Open
///   [unused:14][IsTiny:1][Open:1][freed:16]   |    [ends:16][starts:16]
///   starts  bit k: a tiny object starts at byte k of the block (never cleared while the block lives)
///   ends    bit k: that object's last byte is k, so Read/Write bounds are exact
///   freed   bit k: the object starting at byte k was freed (a second free says so)
///   Open    an mcache still bumps into this block
///   IsTiny  the slot is a tiny block (a plain 16-byte object has IsTiny clear)
/// </code>
/// Live objects are <c>starts &amp; ~freed</c>. Because the halves are separate words, the mcache's bump
/// allocation needs no atomic operation: it only ORs bits into the low half, which nobody else writes.
/// Invariant: the block's slot is allocated while IsTiny is set; it is freed, under the lock, exactly when it is
/// no longer Open and nothing in it is live — by the last free, or by the mcache closing it (Open is only
/// cleared under the lock, after which the low half never changes). After that the mask keeps its bits as
/// tombstones until the slot is allocated again.
/// </summary>
internal static unsafe class TinyBlock
{
    public const byte SpanClass = SizeClasses.TinySizeClass << 1 | 1;
    public const int Size = SizeClasses.TinySize;
    public const uint OffsetMask = 0xFFFF;

    // High half (bit numbers within the whole mask).
    public const int FreedShift = 32;
    public const ulong Open = 1UL << 48;
    public const ulong IsTiny = 1UL << 49;

    /// <summary>Low-half bits of a new object: its start and its last byte.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NewObject(nuint offset, nuint size) => (1u << (int)offset) | (1u << (15 + (int)(offset + size)));

    public static uint Starts(ulong mask) => (uint)mask & OffsetMask;
    public static uint Freed(ulong mask) => (uint)(mask >> FreedShift) & OffsetMask;
    public static uint Live(ulong mask) => Starts(mask) & ~Freed(mask);
    public static ulong FreedBit(int offset) => 1UL << (FreedShift + offset);

    /// <summary>The owner's half, which only the owning mcache writes (bump allocation).</summary>
    public static uint* OwnerHalf(ulong* mask) => (uint*)mask;

    /// <summary>The half written under the mcentral lock (freed bits, Open, IsTiny).</summary>
    public static uint* LockedHalf(ulong* mask) => (uint*)mask + 1;

    /// <summary>Exclusive end of the object starting at <paramref name="offset"/>: one past its end bit.</summary>
    public static int EndOf(ulong mask, int offset)
    {
        uint ends = ((uint)mask >> 16) >> offset;
        return ends == 0 ? Size : offset + 1 + BitOperations.TrailingZeroCount(ends);
    }
}
