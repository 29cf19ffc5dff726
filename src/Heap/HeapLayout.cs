namespace ClusterHeap.Heap;

/// <summary>
/// mallocinit's arithmetic and its one reservation. The node heap is a single PROT_NONE reservation:
/// <code>
///  p (hint)                                                arena_start                  arena_end
///  | spans: arena/PageSize × 8 B | bitmap: arena/16 (4 bits/word) | arena: configured, default 512 GiB |
/// </code>
/// The reservation is asked for at the slot's hint, <c>slot &lt;&lt; 40 | 0x00c0 &lt;&lt; 32</c>, first, and then
/// along Go 1.4's mallocinit loop over slots 0..0x7f. The address the kernel returned is checked, never assumed.
/// </summary>
public sealed record HeapLayout
{
    /// <summary>The 1 TiB window of arena slot 0 starts here (Go's 0x00c0 &lt;&lt; 32).</summary>
    public const ulong ArenaBaseHint = 0x00c0UL << 32;

    /// <summary>Each slot is a 1 TiB window: hint(slot) = slot &lt;&lt; SlotShift | ArenaBaseHint.</summary>
    public const int SlotShift = 40;

    /// <summary>Go 1.4's mallocinit loop tries slots 0..0x7f: 48-bit user addresses end below slot 0x80.</summary>
    public const int MaxSlot = 0x7f;

    /// <summary>Default arena: 512 GiB, as Go 1.4's mallocinit on 64-bit.</summary>
    public const long DefaultArenaSize = 512L << 30;

    public required int Slot { get; init; }
    public required nuint Hint { get; init; }
    /// <summary>True when the reservation landed at the node's own slot hint (false: the fallback loop found another).</summary>
    public required bool GotHint { get; init; }
    public required nuint ReservationStart { get; init; }
    public required long ReservationSize { get; init; }
    public required nuint SpansStart { get; init; }
    public required long SpansSize { get; init; }
    public required nuint BitmapStart { get; init; }
    public required long BitmapSize { get; init; }
    public required nuint ArenaStart { get; init; }
    public required long ArenaSize { get; init; }
    public nuint ArenaEnd => ArenaStart + (nuint)ArenaSize;

    public static nuint HintFor(int slot) => (nuint)((ulong)slot << SlotShift | ArenaBaseHint);

    /// <summary>The slot whose 1 TiB window holds <paramref name="address"/>, or -1 if none does.</summary>
    public static int SlotOf(ulong address)
    {
        if (address < ArenaBaseHint) return -1;
        ulong slot = (address - ArenaBaseHint) >> SlotShift;
        return slot <= MaxSlot ? (int)slot : -1;
    }

    /// <summary>Go 1.4's mallocinit sizes: (arena, bitmap, spans, whole reservation) for a requested arena size.</summary>
    public static (long Arena, long Bitmap, long Spans, long Reservation) Sizes(long requestedArena)
    {
        long arena = RoundUp(requestedArena, HeapConstants.PageSize);
        long bitmap = arena / (HeapConstants.PtrSize * 8 / 4);                        // 4 bits per heap word
        long spans = RoundUp(arena / HeapConstants.PageSize * HeapConstants.PtrSize, HeapConstants.PageSize);
        long reservation = spans + bitmap + arena + HeapConstants.PageSize;           // one spare page to align
        return (arena, bitmap, spans, reservation);
    }

    /// <summary>
    /// mallocinit: reserves the spans array, bitmap and arena in one PROT_NONE mapping.
    /// Throws <see cref="HeapInitException"/> with the reason when no reservation can be had.
    /// </summary>
    internal static HeapLayout Reserve(long requestedArena, int slot, bool hintOnly = false)
    {
        if (requestedArena <= 0)
            throw new HeapInitException($"arena size must be positive, got {requestedArena} bytes");
        if (slot < 0 || slot > MaxSlot)
            throw new HeapInitException($"arena slot must be in 0..{MaxSlot}, got {slot}");
        (long arena, long bitmap, long spans, long reservation) = Sizes(requestedArena);
        if (reservation > 1L << SlotShift)
        {
            throw new HeapInitException(
                $"arena of {requestedArena} bytes needs a {reservation}-byte reservation, more than a slot's 1 TiB window");
        }

        int lastErrno = 0;
        for (int attempt = -1; attempt <= MaxSlot; attempt++)
        {
            int s = attempt < 0 ? slot : attempt;
            if (attempt == slot) continue;              // already tried first
            if (attempt >= 0 && hintOnly) break;         // the slot's own window or nothing (GcWarmup.cs's scratch heaps)
            nuint hint = HintFor(s);
            nuint p = OsMemory.Reserve(hint, (nuint)reservation, out int errno);
            if (p == 0)
            {
                lastErrno = errno;
                continue;
            }
            if (p != hint)
            {
                // The kernel placed it elsewhere: the slot's window is taken. Give it back, as Go's sysReserve does.
                OsMemory.Free(p, (nuint)reservation);
                continue;
            }
            nuint start = (p + HeapConstants.PageMask) & ~(nuint)HeapConstants.PageMask;
            return new HeapLayout
            {
                Slot = s,
                Hint = HintFor(slot),
                GotHint = s == slot,
                ReservationStart = p,
                ReservationSize = reservation,
                SpansStart = start,
                SpansSize = spans,
                BitmapStart = start + (nuint)spans,
                BitmapSize = bitmap,
                ArenaStart = start + (nuint)spans + (nuint)bitmap,
                ArenaSize = arena,
            };
        }
        throw new HeapInitException(hintOnly
            ? $"could not reserve {reservation} bytes at slot {slot}'s hint (taken, or errno {lastErrno})"
            : $"could not reserve {reservation} bytes at any slot hint 0..0x{MaxSlot:x} (last errno {lastErrno})");
    }

    private static long RoundUp(long n, long to) => (n + to - 1) / to * to;
}
