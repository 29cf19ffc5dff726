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
///   freed     Go's mark bit; with explicit frees and no collector it marks the start of an object that was
///             freed, so a second free says "already freed" rather than "never allocated"
///   kind      Dead (no pointers from here on) / Scalar / Pointer
/// </code>
/// Invariants: boundary is set exactly at the starts of allocated objects (for a cached span, slots freed
/// while cached keep theirs until the span is uncached); the nibbles of free pages are all zero.
/// Concurrency model: a nibble of a small span is written by whoever owns the span's allocation state (its
/// mcache, or the mcentral lock holder); a byte never spans two spans because spans are page aligned.
/// </summary>
internal readonly unsafe struct HeapBitmap(nuint bitmapStart, nuint arenaStart)
{
    public const byte Boundary = 1;
    public const byte Freed = 2;
    public const int KindShift = 2;

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
        if (noscan)
        {
            Set(addr, Nibble(true, WordKind.Scalar));
            return;
        }
        nuint words = size >> 3;
        if (pointerMask.IsEmpty)
        {
            Set(addr, Nibble(true, WordKind.Pointer));
            for (nuint i = 1; i < words; i++) Set(addr + (i << 3), Nibble(false, WordKind.Pointer));
            return;
        }
        nuint last = 0;   // one past the last pointer word
        for (nuint i = 0; i < words && (int)(i >> 6) < pointerMask.Length; i++)
        {
            if ((pointerMask[(int)(i >> 6)] & (1UL << (int)i)) != 0) last = i + 1;
        }
        for (nuint i = 0; i < words; i++)
        {
            WordKind k = i >= last ? WordKind.Dead
                : (pointerMask[(int)(i >> 6)] & (1UL << (int)i)) != 0 ? WordKind.Pointer : WordKind.Scalar;
            if (i > 0 && k == WordKind.Dead) break;              // the rest is already Dead (zero)
            Set(addr + (i << 3), Nibble(i == 0, i == 0 && k == WordKind.Dead ? WordKind.Scalar : k));
        }
    }

    /// <summary>Clears an object's nibbles and leaves the freed mark at its start.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
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
        for (nuint i = 1; i < words; i++)
        {
            nuint a = addr + (i << 3);
            if (Get(a) == 0) break;   // Dead: nothing was written past here
            Set(a, 0);
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
