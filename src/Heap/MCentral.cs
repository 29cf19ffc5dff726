using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// mcentral: a node's spans of one span class, in three lists: <c>_partial</c> (uncached, swept, with free slots),
/// <c>_full</c> (uncached, swept and full, or cached by an mcache or a lease, which alone may allocate from it) and
/// <c>_unswept</c> (uncached spans the last mark left to sweep, GcSweep.cs; Go's mcentral kept them in the same
/// lists and told them apart by sweepgen). A span is swept before it is handed out: every span an mcache or a lease
/// holds is swept.
/// mcaches take spans from here (<see cref="CacheSpan"/>) and give them back (<see cref="UncacheSpan"/>);
/// frees from any thread land here. When the last object of an uncached span is freed the span goes back
/// to mheap. See NodeHeap.cs for the whole path.
/// Concurrency model: everything is guarded by <c>_lock</c>; the lock order is mcentral → mheap.
/// </summary>
internal sealed unsafe partial class MCentral : IDisposable
{
    private HeapSpinLock _lock;
    private readonly MHeap _heap;
    private readonly MSpan* _lists;      // [0] partial, [1] full, [2] unswept: native sentinels
    private readonly int _sizeClass;
    private readonly nuint _npages;
    private readonly int _elemSize;
    private readonly int _nelems;
    /// <summary>A partial span with fewer free slots than this is "nearly full": see <see cref="Exchange"/>.</summary>
    private readonly int _sparse;

    // Counters, guarded by _lock.
    internal long SlotFrees;          // slots that became free (user frees, folded tiny blocks, unused lease slots)
    internal long ObjectFrees;        // user objects freed (tiny objects included)
    internal long Refills;            // spans handed to mcaches
    internal long GcFrees;            // user objects the sweep reclaimed (tiny objects one by one); also in ObjectFrees

    /// <summary>
    /// Go's mheap.reclaim, set by the node heap: sweeps other spans until <c>npages</c> pages went back to mheap or
    /// nothing waits to be swept; true when it swept anything. Called, without this lock, before the heap grows.
    /// </summary>
    internal Func<nuint, bool>? Reclaim;

    public MCentral(MHeap heap, byte spanClass)
    {
        _heap = heap;
        SpanClass = spanClass;
        _sizeClass = spanClass >> 1;
        _npages = (nuint)SizeClasses.PagesOf(_sizeClass);
        _elemSize = SizeClasses.SizeOf(_sizeClass);
        _nelems = SizeClasses.ObjectsOf(_sizeClass);
        _sparse = Math.Max(1, _nelems / 4);
        _lists = (MSpan*)System.Runtime.InteropServices.NativeMemory.AllocZeroed((nuint)(3 * sizeof(MSpan)));
        SpanList.Init(&_lists[0]);
        SpanList.Init(&_lists[1]);
        SpanList.Init(&_lists[2]);
    }

    public byte SpanClass { get; }
    private MSpan* Partial => &_lists[0];
    private MSpan* Full => &_lists[1];
    private MSpan* Unswept => &_lists[2];

    public SpinScope Enter() => new(ref _lock);

    /// <summary>Takes the lock without a scope: the free fast path (see NodeHeap.TryFree), and the verifier, which holds every mcentral's at once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Lock() => _lock.Enter();

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Unlock() => _lock.Exit();

    /// <summary>Which of this mcentral's lists holds <paramref name="s"/>. Caller holds the lock.</summary>
    public CentralList ListOf(MSpan* s)
    {
        for (int i = 0; i < 3; i++)
        {
            for (MSpan* t = _lists[i].Next; t != &_lists[i]; t = t->Next)
            {
                if (t == s) return (CentralList)(i + 1);
            }
        }
        return CentralList.None;
    }

    /// <summary>
    /// Hands a span with at least one free slot to a cache (Go's mcentral.cacheSpan) by <see cref="Exchange"/>'s
    /// policy: a partial span, except that a whole free span mheap already has mapped is preferred to a nearly-full
    /// partial one; a fresh span from mheap when there is no partial. Null (and the reason) when mheap cannot grow.
    /// </summary>
    public MSpan* CacheSpan(SpanCache owner, out OutOfMemoryReason reason) => Exchange(null, owner, out reason);

    /// <summary>
    /// An mcache's refill in one visit: gives back <paramref name="full"/> (if not null, as <see cref="UncacheSpan"/>)
    /// and takes a span with free slots under the same lock hold. With <paramref name="preferFresh"/> a nearly-full
    /// partial span is passed over for a whole free span that mheap already has mapped.
    /// </summary>
    public MSpan* Exchange(MSpan* full, SpanCache owner, out OutOfMemoryReason reason, bool preferFresh = true)
    {
        reason = default;
        MSpan* s = null;
        // No try/finally around the lock: nothing inside throws (see NodeHeap.TryFree).
        _lock.Enter();
        if (full != null)
        {
            UncacheLocked(full);
        }
        MSpan* partial = SpanList.IsEmpty(Partial) ? null : Partial->Next;
        if (partial == null && !SpanList.IsEmpty(Unswept)) partial = SweepForCacheLocked();
        if (partial != null && (!preferFresh || partial->NElems - partial->AllocCount >= _sparse || !_heap.HasFreePages(_npages)))
        {
            s = partial;
            SpanList.Remove(s);
            SpanList.InsertBack(Full, s);
            TakeForCache(s, owner);
        }
        _lock.Exit();
        if (s != null) return s;

        // A fresh span: none is partial, or the first partial one is nearly full and mheap has free pages to spare
        // (so this does not grow the heap). Without that preference a ring of frees and mallocs refills on every
        // object, each refill taking back the one slot the last free opened.
        MSpan* fresh = _heap.AllocSpan(_npages, SpanClass, grow: false, out reason);
        if (fresh == null && partial == null)
        {
            // Before the heap grows, garbage the last mark found elsewhere is swept back into mheap (Go's reclaim).
            if (Reclaim != null && Reclaim(_npages)) return Exchange(null, owner, out reason, preferFresh: false);
            fresh = _heap.AllocSpan(_npages, SpanClass, grow: true, out reason);
        }
        if (fresh == null)
        {
            // No free run fits after all: take the partial span (or grow, if it has gone meanwhile).
            return partial == null ? null : Exchange(null, owner, out reason, preferFresh: false);
        }
        _lock.Enter();
        InitSpan(fresh);
        SpanList.InsertBack(Full, fresh);
        TakeForCache(fresh, owner);
        _lock.Exit();
        return fresh;
    }

    private void TakeForCache(MSpan* s, SpanCache owner)
    {
        Debug.Assert(s->Cache == SpanCache.None && s->FreedCount == 0);
        s->Cache = owner;
        CachedSpans++;
        _heap.AddHeapLive((long)(s->NElems - s->AllocCount) * s->ElemSize);    // its free slots count as allocated now
        s->FreeIndex = 0;
        s->NextFreeIndex();
        Refills++;
    }

    /// <summary>Sets up a fresh span for this class (Go's mheap.initSpan for small spans).</summary>
    private void InitSpan(MSpan* s)
    {
        s->ElemSize = _elemSize;
        s->NElems = _nelems;
        s->DivMagic = SizeClasses.DivMagicOf(_sizeClass);
        s->AllocCount = 0;
        s->FreeIndex = 0;
        if (SpanClass == TinyBlock.SpanClass) s->TinyMasks = _heap.NewTinyMasks();
    }

    /// <summary>
    /// A cache gives a span back (Go's mcentral.uncacheSpan): frees recorded while it was cached are folded
    /// in, and the span goes to the partial list, the full list, or back to mheap when nothing in it is live.
    /// </summary>
    public void UncacheSpan(MSpan* s)
    {
        using (Enter())
        {
            Debug.Assert(s->Cache != SpanCache.None);
            UncacheLocked(s);
        }
    }

    /// <summary>
    /// Moves an uncached span to the list its occupancy calls for, or back to mheap when nothing in it is live.
    /// The span goes to mheap before the mcentral lock is released (lock order mcentral → mheap): a free that
    /// validated the span under this lock must never see it half handed back.
    /// </summary>
    private void PlaceUncachedLocked(MSpan* s)
    {
        SpanList.Remove(s);
        if (s->AllocCount == 0)
        {
            _heap.FreeSpan(s);
            return;
        }
        SpanList.InsertBack(s->AllocCount < s->NElems ? Partial : Full, s);
    }

    /// <summary>
    /// Frees slot <paramref name="index"/> of <paramref name="s"/>; caller holds the lock, validated the slot
    /// (allocated, not freed while cached) and has already marked it freed in the bitmap (HeapBitmap.TryClaim).
    /// A span left with nothing live goes back to mheap at once.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void FreeSlotLocked(MSpan* s, int index, bool poison)
    {
        Debug.Assert(_lock.IsHeldByCurrentThread);
        nuint addr = s->StartAddr + (nuint)index * (nuint)s->ElemSize;
        SlotFrees++;
        _heap.AddHeapLive(-s->ElemSize);
        if (s->Cache != SpanCache.None)
        {
            // The owning cache may be allocating from this span right now: record, fold later.
            s->FreedBits[index >> 6] |= 1UL << index;
            s->FreedCount++;
            if (poison) Poison(addr, s->ElemSize);
            return;
        }
        if (poison) Poison(addr, s->ElemSize);
        bool wasFull = s->AllocCount == s->NElems;
        s->AllocBits[index >> 6] &= ~(1UL << index);
        s->AllocCount--;
        s->NeedZero = 1;
        if (wasFull || s->AllocCount == 0) MoveAfterFreeLocked(s);
    }

    /// <summary>A free changed the span's list: full → partial, or nothing live → back to mheap.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void MoveAfterFreeLocked(MSpan* s)
    {
        if (s->AllocCount == 0)
        {
            PlaceUncachedLocked(s);
            return;
        }
        if (s->SweepGen != _heap.SweepGen) return;      // unswept: its sweep files it
        SpanList.Remove(s);
        SpanList.InsertBack(Partial, s);
    }

    /// <summary>
    /// Takes a span back from its mcache or lease: folds the frees recorded while it was cached into AllocBits
    /// (their bitmap nibbles were marked when they were freed) and files it by what is live. Caller holds the lock.
    /// </summary>
    private void UncacheLocked(MSpan* s)
    {
        s->Cache = SpanCache.None;
        CachedSpans--;
        s->LeaseId = 0;
        _heap.AddHeapLive(-(long)(s->NElems - s->AllocCount) * s->ElemSize);   // slots its holder never used
        s->FoldFreedBits();
        PlaceUncachedLocked(s);
    }

    private static void Poison(nuint addr, int size) =>
        new Span<byte>((void*)addr, size).Fill(NodeHeap.PoisonByte);

    public void Dispose() => System.Runtime.InteropServices.NativeMemory.Free(_lists);
}

/// <summary>The mcentral list a span is on (verifier).</summary>
internal enum CentralList
{
    None,
    Partial,
    Full,
    Unswept,
}
