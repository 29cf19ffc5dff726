using System.Numerics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The tiny allocator's bookkeeping. Noscan objects smaller than 16 bytes are bump-allocated inside
/// 16-byte blocks (slots of the noscan class-2 span class), aligned by size as Go does. Each slot of a span of
/// that class has a 64-bit mask in <c>MSpan.TinyMasks</c>, in two 32-bit halves with different writers:
/// <code>
///   high half, shared (compare-and-swap only)      low half, written by the owning mcache while Open
///   [gen:14][IsTiny:1][Open:1][freed:16]      |    [ends:16][starts:16]
///   starts  bit k: a tiny object starts at byte k of the block (never cleared while the block lives)
///   ends    bit k: that object's last byte is k, so Read/Write bounds are exact
///   freed   bit k: the object starting at byte k was freed (a second free says so)
///   Open    an mcache may still bump into this block; a full block (an object ends at byte 15) is closed
///           whatever Open says, so its owner drops it without a compare-and-swap (<see cref="IsClosed"/>)
///   IsTiny  the slot is a tiny block (a plain 16-byte object has IsTiny clear)
///   gen     the opening mcache's count of blocks opened: a lock-free free that read this mask before the block
///           died, its span went back to mheap and the mask array came back for another span, finds a new block
///           there with (all but surely) another gen, so its compare-and-swap fails instead of freeing that
///           block's object at the same offset (only a double free racing with reuse can get that far)
/// </code>
/// Live objects are <c>starts &amp; ~freed</c>. Because the halves are separate words, the mcache's bump
/// allocation needs no atomic operation: it only ORs bits into the low half, which nobody else writes.
/// <para>
/// While IsTiny is set, the high half changes only by compare-and-swap (<see cref="Free"/>, <see cref="Close"/>), from
/// any thread, with or without a lock. A slot with IsTiny clear is no live block, so no compare-and-swap on it can
/// succeed, and whoever holds the slot may rewrite its whole mask plainly (a new block; a plain 16-byte object's free
/// dropping old tombstones). The block <i>dies</i> when it is closed with nothing live; the step that makes it so also
/// clears IsTiny, so exactly one caller sees <see cref="TinyUpdate.Died"/>, and that caller disposes of the slot: the
/// owning mcache puts it on its tiny class's free stack (MCache.Tiny.cs) to reuse the slot, anyone else frees it
/// under the tiny class's mcentral lock. Until the slot's nibble turns from <see cref="HeapBitmap.TinyBlockStart"/> to
/// freed, a slot whose mask has IsTiny clear but whose nibble still says "block" is a dying block, and the node heap
/// treats it as freed (NodeHeap.IsLive).
/// </para>
/// Invariant: the block's slot is allocated while IsTiny is set; after it dies the mask keeps its bits as
/// tombstones (so a second free says TinyAlreadyFreed) until the slot is opened again, or handed out as a plain
/// 16-byte object and freed (that free clears them, so a second free of it says AlreadyFreed). A new block's mask is
/// written plainly before its first object is handed out: its tombstones have IsTiny clear, so no
/// compare-and-swap can be racing on it.
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

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Starts(ulong mask) => (uint)mask & OffsetMask;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Freed(ulong mask) => (uint)(mask >> FreedShift) & OffsetMask;
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Live(ulong mask) => Starts(mask) & ~Freed(mask);
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static ulong FreedBit(int offset) => 1UL << (FreedShift + offset);

    /// <summary>The owner's half, which only the owning mcache writes (bump allocation).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint* OwnerHalf(ulong* mask) => (uint*)mask;

    /// <summary>Low-half bit: an object ends at the block's last byte, so its owner can bump no further.</summary>
    private const uint FullLow = 1u << 31;

    /// <summary>
    /// Nobody will allocate in the block again: its owner closed it, or it is full. Why a full block's death is never
    /// missed: no free can leave a full block with nothing live before the object that filled it (F) is freed. F's
    /// freer saw F's start bit, which the owner wrote in the same store as the full bit, before handing F out; every
    /// compare-and-swap after F's reads the shared half F's wrote, and only then the owner's half, so it sees the
    /// full bit too.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static bool IsClosed(ulong mask) => (mask & Open) == 0 || ((uint)mask & FullLow) != 0;

    /// <summary>One past the last byte of the block's last object: where its owner bumps next (verifier).</summary>
    public static int BumpEnd(ulong mask)
    {
        uint ends = ((uint)mask >> 16) & OffsetMask;
        return ends == 0 ? 0 : BitOperations.Log2(ends) + 1;
    }

    /// <summary>Exclusive end of the object starting at <paramref name="offset"/>: one past its end bit.</summary>
    public static int EndOf(ulong mask, int offset)
    {
        uint ends = ((uint)mask >> 16) >> offset;
        return ends == 0 ? Size : offset + 1 + BitOperations.TrailingZeroCount(ends);
    }

    /// <summary>The shared half (freed bits, Open, IsTiny): compare-and-swap only, once the block is in use.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint* SharedHalf(ulong* mask) => (uint*)mask + 1;

    private const uint OpenHigh = (uint)(Open >> FreedShift);
    private const uint IsTinyHigh = (uint)(IsTiny >> FreedShift);

    private const int GenShift = 18;           // within the high half

    /// <summary>The shared half of a new block: a tiny block, open if its mcache keeps bumping into it, with its gen.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint NewShared(bool open, uint generation) => IsTinyHigh | (open ? OpenHigh : 0) | generation << GenShift;

    /// <summary>
    /// Marks the tiny object at byte <paramref name="offset"/> of the block freed. <see cref="TinyUpdate.Died"/>: that
    /// was the last live object of a closed block, and the caller must dispose of the block's slot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TinyUpdate Free(ulong* mask, int offset)
    {
        uint* shared = SharedHalf(mask);
        uint high = Volatile.Read(ref *shared);
        while (true)
        {
            // The low half is read after the high one: if the block was closed by then, the low half is final.
            ulong m = (ulong)high << FreedShift | *OwnerHalf(mask);
            if ((m & IsTiny) == 0) return TinyUpdate.NotTiny;
            if ((Starts(m) & (1u << offset)) == 0) return TinyUpdate.NotLive;
            if ((m & FreedBit(offset)) != 0) return TinyUpdate.AlreadyFreed;
            uint next = high | 1u << offset;
            bool dies = IsClosed((ulong)next << FreedShift | (uint)m) && (Starts(m) & ~next & OffsetMask) == 0;
            if (dies) next &= ~IsTinyHigh;
            uint seen = Interlocked.CompareExchange(ref *shared, next, high);
            if (seen == high) return dies ? TinyUpdate.Died : TinyUpdate.Done;
            high = seen;
        }
    }

    /// <summary>
    /// The sweep reclaims a closed block the last mark did not reach (GcSweep.cs): every object still live in it is
    /// freed at once and the block dies, in one compare-and-swap that races fairly with <see cref="Free"/>. Returns how
    /// many objects it freed, or -1 when the slot is no live block any more (a racing free killed it and disposes of it).
    /// </summary>
    public static int Kill(ulong* mask)
    {
        uint* shared = SharedHalf(mask);
        uint high = Volatile.Read(ref *shared);
        while (true)
        {
            if ((high & IsTinyHigh) == 0) return -1;
            uint starts = Starts(*OwnerHalf(mask));          // the block is closed: its owner's half is final
            int live = BitOperations.PopCount(starts & ~high & OffsetMask);
            uint next = (high | starts) & ~IsTinyHigh;
            uint seen = Interlocked.CompareExchange(ref *shared, next, high);
            if (seen == high) return live;
            high = seen;
        }
    }

    /// <summary>
    /// The owning mcache stops bumping into a block that is not full (a full one is closed already: its owner just
    /// forgets it). <see cref="TinyUpdate.Died"/>: nothing in it was live, and the caller must dispose of the block's slot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static TinyUpdate Close(ulong* mask)
    {
        uint* shared = SharedHalf(mask);
        uint high = Volatile.Read(ref *shared);
        while (true)
        {
            uint next = high & ~OpenHigh;
            bool dies = (Starts(*mask) & ~next & OffsetMask) == 0;     // the low half is the owner's own: final now
            if (dies) next &= ~IsTinyHigh;
            uint seen = Interlocked.CompareExchange(ref *shared, next, high);
            if (seen == high) return dies ? TinyUpdate.Died : TinyUpdate.Done;
            high = seen;
        }
    }
}

/// <summary>What <see cref="TinyBlock.Free"/> or <see cref="TinyBlock.Close"/> did.</summary>
internal enum TinyUpdate
{
    /// <summary>Done; the block lives on.</summary>
    Done,
    /// <summary>Done, and the block died: the caller disposes of its slot.</summary>
    Died,
    /// <summary>Nothing written: the slot is not a tiny block (any more).</summary>
    NotTiny,
    /// <summary>Nothing written: no tiny object starts at that byte.</summary>
    NotLive,
    /// <summary>Nothing written: the object was freed already.</summary>
    AlreadyFreed,
}
