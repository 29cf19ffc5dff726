using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>Where a span is in its life. See NodeHeap.cs for the whole picture.</summary>
internal enum SpanState : byte
{
    /// <summary>On an mheap free list: pages not in use.</summary>
    Free = 0,
    /// <summary>Holding objects: small slots (size class ≥ 1) or one large object (class 0).</summary>
    InUse = 1,
    /// <summary>A list sentinel, never a real span.</summary>
    Sentinel = 2,
}

/// <summary>Who holds a span's allocation state.</summary>
internal enum SpanCache : byte
{
    /// <summary>mcentral's lists; state guarded by the mcentral lock.</summary>
    None = 0,
    /// <summary>An mcache owns it; only that mcache allocates from it.</summary>
    MCache = 1,
    /// <summary>Lent to a remote mcache: every slot free at lend time was marked allocated for the lessee.</summary>
    Lease = 2,
}

/// <summary>
/// mspan: a run of pages. Lives in native memory (FixAlloc), so a spans-array entry is its address.
/// <para>
/// Concurrency model: an in-use small span is either uncached, and then every field below is guarded by
/// its mcentral's lock, or cached by one mcache, and then <see cref="FreeIndex"/>, <see cref="AllocCache"/>,
/// <see cref="AllocBits"/> and <see cref="AllocCount"/> belong to that mcache alone while
/// <see cref="FreedBits"/> / <see cref="FreedCount"/> are written under the mcentral lock by frees from any
/// thread and folded into AllocBits when the span is uncached (also under the lock). Free spans and large
/// spans are guarded by the mheap lock.
/// </para>
/// <para>
/// Invariants (checked by the verifier):
/// <c>AllocCount == popcount(AllocBits)</c>; <c>FreedBits ⊆ AllocBits</c> and <c>FreedCount == popcount(FreedBits)</c>;
/// live slots = <c>AllocCount - FreedCount</c>; <c>live + free slots == NElems</c>;
/// FreedBits is empty unless the span is cached; every slot below FreeIndex is allocated in AllocBits
/// while the span is cached; AllocCache holds the inverted AllocBits from FreeIndex to the end of its word.
/// </para>
/// </summary>
[StructLayout(LayoutKind.Sequential)]
internal unsafe struct MSpan
{
    /// <summary>The most objects a span can hold: class 1, 8192 / 8.</summary>
    public const int MaxObjects = HeapConstants.PageSize / 8;
    public const int BitWords = MaxObjects / 64;

    public nuint StartAddr;
    public nuint NPages;
    /// <summary>Links of the one list that holds the span (an mheap free list or an mcentral list), or null.</summary>
    public MSpan* Next;
    public MSpan* Prev;
    public int ElemSize;
    public int NElems;
    /// <summary>Cached spans: next slot index to look at; slots below it are taken.</summary>
    public int FreeIndex;
    /// <summary>Slots with their AllocBits bit set (live plus freed-while-cached).</summary>
    public int AllocCount;
    /// <summary>Inverted AllocBits from FreeIndex: bit k set = slot FreeIndex+k is free (Go's allocCache).</summary>
    public ulong AllocCache;
    /// <summary>Go's divMagic for ElemSize: <see cref="ObjectIndex"/> divides by multiplying (SizeClasses.ObjectIndex).</summary>
    public uint DivMagic;
    /// <summary>sizeclass &lt;&lt; 1 | noscan.</summary>
    public byte SpanClass;
    public SpanState State;
    public SpanCache Cache;
    /// <summary>1 when some slot or page may hold old data and must be cleared before reuse.</summary>
    public byte NeedZero;
    public int FreedCount;
    /// <summary>Free spans: Stopwatch timestamp of when the run became free (Go's unusedsince).</summary>
    public long UnusedSince;
    /// <summary>Free spans: pages already returned to the OS (Go's npreleased).</summary>
    public nuint NPReleased;
    /// <summary>Lent spans: the lease id; 0 otherwise.</summary>
    public long LeaseId;
    /// <summary>Spans of the tiny span class: one TinyBlock mask per slot (see TinyBlock); null otherwise.</summary>
    public ulong* TinyMasks;
    public fixed ulong AllocBits[BitWords];
    /// <summary>Frees that landed while the span was cached, waiting to be folded into AllocBits.</summary>
    public fixed ulong FreedBits[BitWords];

    public readonly int SizeClass => SpanClass >> 1;
    public readonly bool Noscan => (SpanClass & 1) != 0;
    public readonly bool IsLarge => SpanClass >> 1 == 0;
    public readonly nuint Bytes => NPages << HeapConstants.PageShift;
    public readonly nuint EndAddr => StartAddr + (NPages << HeapConstants.PageShift);

    /// <summary>
    /// The slot index of <paramref name="address"/> in this small-object span: offset / ElemSize by Go's objIndex
    /// arithmetic (<see cref="SizeClasses.ObjectIndex"/>, tested at every slot of every class). The caller checked
    /// <c>StartAddr &lt;= address</c>; an index past NElems means the address is past the last slot.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly int ObjectIndex(nuint address) => SizeClasses.DivideByMagic(address - StartAddr, DivMagic);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool IsAllocated(int index) => (AllocBits[index >> 6] & (1UL << index)) != 0;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public readonly bool IsFreedWhileCached(int index) => (FreedBits[index >> 6] & (1UL << index)) != 0;

    /// <summary>Live slots: allocated and not freed while cached.</summary>
    public readonly int Live => AllocCount - FreedCount;

    /// <summary>Reloads AllocCache for the 64-slot word that holds FreeIndex (Go's refillAllocCache).</summary>
    public void RefillAllocCache()
    {
        int word = FreeIndex >> 6;
        AllocCache = word < BitWords ? ~AllocBits[word] >> (FreeIndex & 63) : 0;
    }

    /// <summary>
    /// Go's nextFreeIndex: advances FreeIndex to the next free slot at or after it, or to NElems when
    /// there is none, and reloads AllocCache. Slow path of <see cref="MCache"/>'s nextFreeFast.
    /// </summary>
    public int NextFreeIndex()
    {
        int i = FreeIndex;
        while (i < NElems)
        {
            ulong free = ~AllocBits[i >> 6] >> (i & 63);
            if (free != 0)
            {
                i += BitOperations.TrailingZeroCount(free);
                break;
            }
            i = (i | 63) + 1;
        }
        if (i > NElems) i = NElems;
        FreeIndex = i;
        RefillAllocCache();
        return i;
    }

    /// <summary>Folds FreedBits into AllocBits; returns how many slots it freed. Caller holds the mcentral lock.</summary>
    public int FoldFreedBits()
    {
        int n = FreedCount;
        if (n == 0) return 0;
        for (int w = 0; w < BitWords; w++)
        {
            AllocBits[w] &= ~FreedBits[w];
            FreedBits[w] = 0;
        }
        AllocCount -= n;
        FreedCount = 0;
        NeedZero = 1;
        return n;
    }

    public readonly int PopCount(bool freed)
    {
        int n = 0;
        for (int w = 0; w < BitWords; w++)
        {
            n += BitOperations.PopCount(freed ? FreedBits[w] : AllocBits[w]);
        }
        return n;
    }
}

/// <summary>Circular doubly-linked lists of spans with a native sentinel (Go's mSpanList).</summary>
internal static unsafe class SpanList
{
    public static void Init(MSpan* sentinel)
    {
        sentinel->State = SpanState.Sentinel;
        sentinel->Next = sentinel;
        sentinel->Prev = sentinel;
    }

    public static bool IsEmpty(MSpan* sentinel) => sentinel->Next == sentinel;

    public static void InsertFront(MSpan* sentinel, MSpan* span)
    {
        span->Next = sentinel->Next;
        span->Prev = sentinel;
        sentinel->Next->Prev = span;
        sentinel->Next = span;
    }

    public static void InsertBack(MSpan* sentinel, MSpan* span)
    {
        span->Prev = sentinel->Prev;
        span->Next = sentinel;
        sentinel->Prev->Next = span;
        sentinel->Prev = span;
    }

    public static void Remove(MSpan* span)
    {
        span->Prev->Next = span->Next;
        span->Next->Prev = span->Prev;
        span->Next = null;
        span->Prev = null;
    }
}
