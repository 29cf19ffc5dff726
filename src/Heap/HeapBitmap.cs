using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>What a heap word holds, in the bitmap's 2-bit kind field.</summary>
public enum WordKind : byte
{
    /// <summary>No pointers from this word to the end of its object (and every word of free memory).</summary>
    Dead = 0,
    Scalar = 1,
    Pointer = 2,
}

/// <summary>
/// The heap bitmap: 4 bits per 8-byte arena word, two words per byte, growing upward from
/// <c>bitmap_start</c> in step with the arena (word w of the arena is nibble w of the bitmap).
/// <code>
///   nibble: [kind:2][freed:1][boundary:1]     (bit 0 = boundary)
///   boundary  an object starts at this word
///   freed     Go 1.4's mark bit; here it marks the start of an object that was freed (explicitly or by the
///             sweep), so a second free says "already freed" rather than "never allocated". The collector
///             marks elsewhere, in each span's MarkBits (Go 1.7's gcmarkBits, MSpan.cs), so a mark never
///             touches the nibble every free claims
///   kind      Dead (no pointers from here on) / Scalar / Pointer
/// </code>
/// An object's start nibble always has a kind (Scalar or Pointer). A tiny block's start nibble is boundary with kind
/// Dead (<see cref="TinyBlockStart"/>): the block is an allocation unit, not an object; its tiny objects are freed
/// through its mask (TinyBlock.cs), and no claim ever takes a tiny block's nibble (<see cref="TryClaimObject"/>).
/// Invariants: boundary is set exactly at the starts of live objects (a freed object loses it at once, also in a
/// cached span or on an mcache's free stack, and shows the freed mark instead); the nibbles of free pages are all zero.
/// <para>
/// Concurrency model: every free begins with <see cref="TryClaim"/>, which turns the object's start nibble from
/// boundary to freed with one compare-and-swap: of two frees of the same object, on any threads and with or without
/// locks, exactly one wins. Apart from that claim, an object's nibbles are written only by whoever owns its slot:
/// the allocator while the slot is free (its mcache, or the mcentral lock holder), the claimer after the claim. A byte
/// holds two words, so it belongs to one object whenever objects are multiples of 16 bytes (spans are page aligned).
/// Only 8- and 24-byte objects share bytes with a neighbour, so every write of theirs goes through
/// <see cref="SetAtomic"/> (<see cref="MarkAllocated"/>, <see cref="ClearClaimed"/>). The one plain write of a shared
/// byte is MCache.Malloc's start nibble of a noscan 24-byte object: its byte's other nibble is the previous object's
/// last word, which a noscan span never writes. (8-byte noscan objects exist too: Malloc makes them tiny, but a
/// remote mcache's lease of that class hands out real 8-byte slots.)
/// </para>
/// </summary>
internal readonly unsafe struct HeapBitmap(nuint bitmapStart, nuint arenaStart)
{
    public const byte Boundary = 1;
    public const byte Freed = 2;
    public const int KindShift = 2;
    /// <summary>The start nibble of a tiny block: boundary, kind Dead.</summary>
    public const byte TinyBlockStart = Boundary;

    private readonly byte* _bits = (byte*)bitmapStart;
    private readonly nuint _arena = arenaStart;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public byte Get(nuint addr)
    {
        nuint w = (addr - _arena) >> 3;
        return (byte)((_bits[w >> 1] >> (int)((w & 1) << 2)) & 0xF);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Set(nuint addr, byte nibble)
    {
        nuint w = (addr - _arena) >> 3;
        int shift = (int)((w & 1) << 2);
        byte* b = _bits + (w >> 1);
        *b = (byte)((*b & ~(0xF << shift)) | (nibble << shift));
    }

    /// <summary>Writes one nibble with a compare-and-swap of its byte, so a neighbour's write to the other nibble is never lost.</summary>
    public void SetAtomic(nuint addr, byte nibble)
    {
        nuint w = (addr - _arena) >> 3;
        int shift = (int)((w & 1) << 2);
        byte* b = _bits + (w >> 1);
        byte old = *b;
        while (true)
        {
            byte seen = Interlocked.CompareExchange(ref *b, (byte)((old & ~(0xF << shift)) | (nibble << shift)), old);
            if (seen == old) return;
            old = seen;
        }
    }

    /// <summary>
    /// The first step of every free: turns the start nibble of the object at <paramref name="addr"/> from boundary
    /// (live) to <see cref="Freed"/>, atomically. False, with nothing written, when no live object starts there —
    /// never allocated, freed already, or claimed by a racing free this very moment.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryClaim(nuint addr) => TryClaim(addr, objectsOnly: false);

    /// <summary>
    /// <see cref="TryClaim"/> for a free that has not looked at the span yet (MCache.TryFree): claims only an object
    /// start, never a tiny block's. Once it succeeds, the object's slot stays allocated, so its span is stable.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryClaimObject(nuint addr) => TryClaim(addr, objectsOnly: true);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool TryClaim(nuint addr, bool objectsOnly)
    {
        nuint w = (addr - _arena) >> 3;
        int shift = (int)((w & 1) << 2);
        byte* b = _bits + (w >> 1);
        byte old = *b;
        while ((old >> shift & Boundary) != 0 && (!objectsOnly || (old >> shift & 0xF) >> KindShift != 0))
        {
            byte seen = Interlocked.CompareExchange(ref *b, (byte)((old & ~(0xF << shift)) | (Freed << shift)), old);
            if (seen == old) return true;
            old = seen;          // the other nibble changed (8- and 24-byte classes): look again
        }
        return false;
    }

    /// <summary>
    /// Finishes a claimed free: clears the kind nibbles of a scan object's other words. Caller won
    /// <see cref="TryClaim"/> for <paramref name="addr"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void ClearClaimed(nuint addr, nuint size, bool noscan)
    {
        if (!noscan) ClearWords(addr, size);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static byte Nibble(bool boundary, WordKind kind) => (byte)((boundary ? Boundary : 0) | ((int)kind << KindShift));

    public static WordKind KindOf(byte nibble) => (WordKind)(nibble >> KindShift);

    /// <summary>
    /// Marks a newly allocated object. Noscan objects write one nibble (boundary, scalar; the next word stays
    /// Dead = "no pointers here"). Scan objects write every word's kind: Pointer where <paramref name="pointerMask"/>
    /// says so (all words when it is empty: untyped, conservative), Scalar otherwise, Dead after the last pointer.
    /// </summary>
    public void MarkAllocated(nuint addr, nuint size, bool noscan, ReadOnlySpan<ulong> pointerMask)
    {
        bool shared = (size & 8) != 0;    // 8- and 24-byte objects share bitmap bytes with their neighbours
        if (noscan)
        {
            Put(addr, Nibble(true, WordKind.Scalar), shared);
            return;
        }
        nuint words = size >> 3;
        if (pointerMask.IsEmpty)
        {
            for (nuint i = 0; i < words; i++) Put(addr + (i << 3), Nibble(i == 0, WordKind.Pointer), shared);
            return;
        }
        nuint last = 0;   // one past the last pointer word: found from the mask's last word with a pointer in the object
        for (int m = (int)Math.Min((nuint)pointerMask.Length, (words + 63) >> 6) - 1; m >= 0; m--)
        {
            ulong bits = pointerMask[m];
            nuint inWord = words - ((nuint)m << 6);
            if (inWord < 64) bits &= (1UL << (int)inWord) - 1;
            if (bits == 0) continue;
            last = ((nuint)m << 6) + (nuint)(64 - System.Numerics.BitOperations.LeadingZeroCount(bits));
            break;
        }
        if (last == 0)
        {
            Put(addr, Nibble(true, WordKind.Scalar), shared);   // no pointer at all: a start nibble, then Dead
            return;
        }
        for (nuint i = 0; i < last; i++)
        {
            WordKind k = (pointerMask[(int)(i >> 6)] & (1UL << (int)i)) != 0 ? WordKind.Pointer : WordKind.Scalar;
            Put(addr + (i << 3), Nibble(i == 0, k), shared);   // words from last on stay Dead (zero)
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Put(nuint addr, byte nibble, bool shared)
    {
        if (shared) SetAtomic(addr, nibble);
        else Set(addr, nibble);
    }

    /// <summary>
    /// Clears an object's nibbles and leaves the freed mark at its start, with plain writes: for slots whose
    /// frees are serialized by a lock (tiny blocks, under the tiny class's mcentral lock).
    /// </summary>
    public void MarkFreed(nuint addr, nuint size, bool noscan)
    {
        Set(addr, Freed);
        if (!noscan) ClearWords(addr, size);
    }

    /// <summary>Clears the kind nibbles of a scan object's words after the first, up to the first Dead one.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ClearWords(nuint addr, nuint size)
    {
        nuint words = size >> 3;
        bool shared = (size & 8) != 0;
        for (nuint i = 1; i < words; i++)
        {
            nuint a = addr + (i << 3);
            if (Get(a) == 0) break;   // Dead: nothing was written past here
            Put(a, 0, shared);
        }
    }

    /// <summary>
    /// The first word in [from, to) whose boundary bit is set, or 0. Eight bytes of bitmap (16 words) at a time:
    /// the verifier runs this over every word of every in-use span.
    /// </summary>
    public nuint FirstBoundary(nuint from, nuint to)
    {
        nuint a = from;
        while (a < to && (((a - _arena) >> 3) & 15) != 0)
        {
            if ((Get(a) & Boundary) != 0) return a;
            a += 8;
        }
        const ulong Boundaries = 0x1111111111111111;     // bit 0 of every nibble
        while (a + 128 <= to)
        {
            if ((*(ulong*)(_bits + ((a - _arena) >> 4)) & Boundaries) != 0) break;
            a += 128;
        }
        for (; a < to; a += 8)
        {
            if ((Get(a) & Boundary) != 0) return a;
        }
        return 0;
    }

    /// <summary>The bitmap byte that holds the nibble of <paramref name="addr"/>.</summary>
    public nuint ByteOf(nuint addr) => (nuint)(_bits + ((addr - _arena) >> 4));

    /// <summary>Zeroes the nibbles of [addr, addr+size): the span's pages go back to mheap.</summary>
    public void Clear(nuint addr, nuint size)
    {
        nuint w = (addr - _arena) >> 3;
        NativeMemory.Clear(_bits + (w >> 1), size >> 4);
    }
}
