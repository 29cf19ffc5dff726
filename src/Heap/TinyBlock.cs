namespace ClusterHeap.Heap;

/// <summary>
/// The tiny allocator's bookkeeping. Noscan objects smaller than 16 bytes are bump-allocated inside
/// 16-byte blocks (slots of the noscan class-2 span class), aligned by size as Go does. Each slot of a span of
/// that class has a 64-bit mask in <c>MSpan.TinyMasks</c>:
/// <code>
///   [unused:14][ends:16][IsTiny:1][Open:1][freed offsets:16][live offsets:16]
///   live   bit k: a live tiny object starts at byte k of the block
///   ends   bit k: a tiny object (live or freed) ends at byte k (its last byte), so Read/Write bounds are exact
///   freed  bit k: a tiny object that started at byte k was freed (so a second free says so)
///   Open   an mcache still bumps into this block
///   IsTiny the slot is a tiny block (a plain 16-byte object has mask 0)
/// </code>
/// Invariant: the block's slot is allocated while IsTiny is set; it is freed exactly when no live bit and no
/// Open bit remain, by whichever of the last free or the mcache closing the block clears the last one
/// (compare-and-swap on the mask, since the owning mcache sets live bits without a lock). After that the
/// mask keeps only the freed offsets, until the slot is allocated again.
/// </summary>
internal static class TinyBlock
{
    public const byte SpanClass = SizeClasses.TinySizeClass << 1 | 1;
    public const int Size = SizeClasses.TinySize;
    public const ulong LiveMask = 0xFFFF;
    public const int FreedShift = 16;
    public const ulong Open = 1UL << 32;
    public const ulong IsTiny = 1UL << 33;
    public const int EndShift = 34;

    public static ulong Live(int offset) => 1UL << offset;
    public static ulong FreedBit(int offset) => 1UL << (FreedShift + offset);

    /// <summary>Live start bit and end bit of a new tiny object of <paramref name="size"/> bytes at <paramref name="offset"/>.</summary>
    public static ulong NewObject(nuint offset, nuint size) => (1UL << (int)offset) | (1UL << (EndShift - 1 + (int)(offset + size)));

    /// <summary>
    /// Exclusive end of the live tiny object at <paramref name="offset"/>: one past the first end bit at or after it.
    /// Objects never overlap, so that end bit is its own (stale end bits of freed objects lie outside it).
    /// </summary>
    public static int EndOf(ulong mask, int offset)
    {
        ulong ends = (mask >> EndShift & LiveMask) >> offset;
        return ends == 0 ? Size : offset + 1 + System.Numerics.BitOperations.TrailingZeroCount(ends);
    }
}
