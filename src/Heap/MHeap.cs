using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// mheap: the page heap of one node (see NodeHeap.cs for the overview). It owns the arena's pages, the
/// spans array and the bitmap's mapping, and hands out runs of pages as spans: to mcentral for small size
/// classes, and straight to the caller for large objects. Free runs sit on size-indexed lists
/// (<see cref="MaxListPages"/> exact lists plus one best-fit list for bigger runs, as Go's mheap before 1.12),
/// coalesce with their free neighbours, and are returned to the OS by the scavenger after an idle delay.
/// <para>
/// The arena grows upward from arena_start: growing maps arena pages read-write together with the matching
/// pages of the spans array and the bitmap, in chunks of at least <see cref="GrowChunk"/>, never past the
/// arena's end nor past <see cref="GrowthLimit"/> bytes mapped.
/// </para>
/// <para>
/// Spans array invariant: every page of an in-use span maps to the span; a free run's first and last page
/// map to the run and its interior pages map to null; pages never grown into are not mapped at all.
/// </para>
/// Concurrency model: every member is guarded by <c>_lock</c>, except <see cref="ArenaUsed"/> (published
/// with a volatile write after the spans array and bitmap beneath it are mapped) and the spans-array reads
/// of Free (which re-checks what it read under the owning mcentral lock) and of the lock-free Read/Write lookup
/// (NodeHeap.Locate, which range-checks every value it reads before using it).
/// </summary>
internal sealed unsafe class MHeap : IDisposable
{
    /// <summary>Free runs of fewer pages than this have an exact list each (Go's _MaxMHeapList).</summary>
    public const int MaxListPages = 128;

    /// <summary>The heap grows by at least 1 MiB at a time (Go's _HeapAllocChunk), rounded to 64 KiB.</summary>
    public const long GrowChunk = 1 << 20;
    private const long GrowRound = 64 << 10;

    private readonly Lock _lock = new();
    private readonly HeapLayout _layout;
    private readonly MSpan** _spans;
    private readonly FixAlloc _spanAlloc = new(sizeof(MSpan));
    private readonly FixAlloc _tinyMaskAlloc = new(MSpan.MaxObjects / 2 * sizeof(ulong));
    private readonly MSpan* _free;          // [MaxListPages] sentinels; index 0 holds runs of ≥ MaxListPages pages
    private readonly long _scavengeDelayTicks;
    private nuint _arenaUsed;                // guarded by _lock for writers; published volatile
    private nuint _spansMapped;              // bytes of the spans array mapped, from its start
    private nuint _bitmapMapped;             // bytes of the bitmap mapped, from its start

    // Page counts, guarded by _lock. HeapSys == HeapIdle + HeapInuse in pages: _pagesInUse + _pagesFree == mapped pages.
    private long _pagesInUse;
    private long _pagesFree;
    private long _pagesReleased;
    private long _largeAllocs, _largeFrees, _largeAllocBytes, _largeFreeBytes;
    private long _scavengedTotal;

    public MHeap(HeapLayout layout, TimeSpan scavengeDelay, long growthLimit)
    {
        _layout = layout;
        _spans = (MSpan**)layout.SpansStart;
        Bitmap = new HeapBitmap(layout.BitmapStart, layout.ArenaStart);
        _arenaUsed = layout.ArenaStart;
        ArenaStart = layout.ArenaStart;
        ArenaEnd = layout.ArenaEnd;
        _scavengeDelayTicks = (long)(scavengeDelay.TotalSeconds * Stopwatch.Frequency);
        GrowthLimit = growthLimit;
        _free = (MSpan*)NativeMemory.AllocZeroed((nuint)(MaxListPages * sizeof(MSpan)));
        for (int i = 0; i < MaxListPages; i++) SpanList.Init(&_free[i]);
    }

    public HeapBitmap Bitmap { get; }
    public readonly nuint ArenaStart;
    public readonly nuint ArenaEnd;
    public nuint ArenaUsed => Volatile.Read(ref _arenaUsed);
    public long ArenaSize => _layout.ArenaSize;

    /// <summary>Most bytes of arena the heap may map (the node's share of the cluster limit).</summary>
    public long GrowthLimit { get; set; }

    /// <summary>The span that page <paramref name="addr"/> belongs to, per the spans array. Caller checked addr &lt; ArenaUsed.</summary>
    public MSpan* SpanOf(nuint addr) => SpanOf(_spans, ArenaStart, addr);

    /// <summary>
    /// The spans-array lookup itself, for holders of the array's address (an mcache keeps it beside its arena start
    /// so its free path reads no mheap field). Caller checked arenaStart &lt;= addr &lt; ArenaUsed.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static MSpan* SpanOf(MSpan** spans, nuint arenaStart, nuint addr) => spans[(addr - arenaStart) >> HeapConstants.PageShift];

    /// <summary>
    /// Allocates a span of <paramref name="npages"/> pages for <paramref name="spanClass"/>: state InUse, every
    /// spans entry set, NeedZero saying whether the pages may hold old data. Returns null and the reason when the
    /// heap cannot grow.
    /// </summary>
    public MSpan* AllocSpan(nuint npages, byte spanClass, out OutOfMemoryReason reason) =>
        AllocSpan(npages, spanClass, grow: true, out reason);

    /// <summary>As above; with <paramref name="grow"/> false only free runs already mapped are used.</summary>
    public MSpan* AllocSpan(nuint npages, byte spanClass, bool grow, out OutOfMemoryReason reason)
    {
        lock (_lock)
        {
            MSpan* s = FindFree(npages);
            if (s == null)
            {
                reason = OutOfMemoryReason.GrowthLimit;
                if (!grow || !Grow(npages, out reason)) return null;
                s = FindFree(npages);
                Debug.Assert(s != null, "grow made a run big enough");
            }
            reason = default;
            SpanList.Remove(s);
            _pagesFree -= (long)s->NPages;

            if (s->NPReleased > 0)
            {
                // Reused pages count as in use again (Go's sysUsed). A fully released run reads as zero.
                _pagesReleased -= (long)s->NPReleased;
            }
            if (s->NPages > npages)
            {
                // Split: the tail stays free. If the whole run was released, so is the tail.
                MSpan* t = NewSpan();
                t->StartAddr = s->StartAddr + (npages << HeapConstants.PageShift);
                t->NPages = s->NPages - npages;
                t->NeedZero = s->NeedZero;
                t->UnusedSince = s->UnusedSince;
                if (s->NPReleased == s->NPages)
                {
                    t->NPReleased = t->NPages;
                    _pagesReleased += (long)t->NPages;
                }
                s->NPages = npages;
                InsertFree(t);
            }
            s->NPReleased = 0;
            s->State = SpanState.InUse;
            s->SpanClass = spanClass;
            s->UnusedSince = 0;
            nuint first = PageIndex(s->StartAddr);
            for (nuint i = 0; i < npages; i++) _spans[first + i] = s;
            _pagesInUse += (long)npages;
            if (spanClass >> 1 == 0)
            {
                _largeAllocs++;
                _largeAllocBytes += (long)s->Bytes;
            }
            return s;
        }
    }

    /// <summary>A hint, read without the lock: mheap has at least this many free pages (maybe not in one run).</summary>
    public bool HasFreePages(nuint npages) => (nuint)Volatile.Read(ref _pagesFree) >= npages;

    /// <summary>Gives an in-use span's pages back: bitmap cleared, coalesced with free neighbours.</summary>
    public void FreeSpan(MSpan* s)
    {
        lock (_lock)
        {
            FreeSpanLocked(s, large: false);
        }
    }

    /// <summary>Frees a large object's span; the caller validated the pointer under <see cref="LockLarge"/>.</summary>
    public void FreeLargeLocked(MSpan* s)
    {
        Debug.Assert(_lock.IsHeldByCurrentThread);
        FreeSpanLocked(s, large: true);
    }

    /// <summary>The mheap lock, for validating a large-object free against concurrent frees of the same span.</summary>
    public Lock.Scope LockLarge() => _lock.EnterScope();

    public ulong* NewTinyMasks()
    {
        lock (_lock)
        {
            return (ulong*)_tinyMaskAlloc.Alloc();
        }
    }

    private void FreeSpanLocked(MSpan* s, bool large)
    {
        Debug.Assert(s->State == SpanState.InUse);
        if (large)
        {
            _largeFrees++;
            _largeFreeBytes += (long)s->Bytes;
        }
        Bitmap.Clear(s->StartAddr, s->Bytes);
        if (s->TinyMasks != null)
        {
            _tinyMaskAlloc.Free(s->TinyMasks);
            s->TinyMasks = null;
        }
        _pagesInUse -= (long)s->NPages;
        s->State = SpanState.Free;
        s->SpanClass = 0;
        s->Cache = SpanCache.None;
        s->LeaseId = 0;
        s->NeedZero = 1;
        s->UnusedSince = Stopwatch.GetTimestamp();
        s->NPReleased = 0;
        s->ElemSize = 0;
        s->NElems = 0;
        s->AllocCount = 0;
        s->FreedCount = 0;
        for (int w = 0; w < MSpan.BitWords; w++)
        {
            s->AllocBits[w] = 0;
            s->FreedBits[w] = 0;
        }
        nuint first = PageIndex(s->StartAddr);
        for (nuint i = 0; i < s->NPages; i++) _spans[first + i] = null;
        InsertFreeCoalescing(s);
    }

    /// <summary>Puts a free run on its list, merging with free neighbours (Go's mheap.freeSpanLocked).</summary>
    private void InsertFreeCoalescing(MSpan* s)
    {
        nuint first = PageIndex(s->StartAddr);
        if (s->StartAddr > _layout.ArenaStart)
        {
            MSpan* before = _spans[first - 1];
            if (before != null && before->State == SpanState.Free)
            {
                SpanList.Remove(before);
                _pagesFree -= (long)before->NPages;
                _spans[first - 1] = null;                       // now interior
                before->NPages += s->NPages;
                before->NPReleased += s->NPReleased;
                before->NeedZero |= s->NeedZero;
                before->UnusedSince = Math.Max(before->UnusedSince, s->UnusedSince);
                ReleaseSpanStruct(s);
                s = before;
                first = PageIndex(s->StartAddr);
            }
        }
        nuint end = s->EndAddr;
        if (end < _arenaUsed)
        {
            MSpan* after = _spans[PageIndex(end)];
            if (after != null && after->State == SpanState.Free)
            {
                SpanList.Remove(after);
                _pagesFree -= (long)after->NPages;
                _spans[PageIndex(end)] = null;                  // now interior
                s->NPages += after->NPages;
                s->NPReleased += after->NPReleased;
                s->NeedZero |= after->NeedZero;
                s->UnusedSince = Math.Max(s->UnusedSince, after->UnusedSince);
                ReleaseSpanStruct(after);
            }
        }
        InsertFree(s);
    }

    private void InsertFree(MSpan* s)
    {
        s->State = SpanState.Free;
        nuint first = PageIndex(s->StartAddr);
        _spans[first] = s;
        _spans[first + s->NPages - 1] = s;
        _pagesFree += (long)s->NPages;
        SpanList.InsertFront(&_free[s->NPages < MaxListPages ? (int)s->NPages : 0], s);
    }

    /// <summary>Smallest fitting run: exact lists first, then best fit (lowest address on ties) among big runs.</summary>
    private MSpan* FindFree(nuint npages)
    {
        for (nuint n = npages; n < MaxListPages; n++)
        {
            MSpan* list = &_free[n];
            if (!SpanList.IsEmpty(list)) return list->Next;
        }
        MSpan* big = &_free[0];
        MSpan* best = null;
        for (MSpan* s = big->Next; s != big; s = s->Next)
        {
            if (s->NPages >= npages &&
                (best == null || s->NPages < best->NPages || (s->NPages == best->NPages && s->StartAddr < best->StartAddr)))
            {
                best = s;
            }
        }
        return best;
    }

    /// <summary>Maps more arena (with its spans and bitmap pages) and frees it into the heap (Go's mheap.grow).</summary>
    private bool Grow(nuint npages, out OutOfMemoryReason reason)
    {
        long need = (long)npages << HeapConstants.PageShift;
        long ask = Math.Max((need + GrowRound - 1) / GrowRound * GrowRound, GrowChunk);
        long mapped = (long)(_arenaUsed - _layout.ArenaStart);
        long room = _layout.ArenaSize - mapped;
        long allowed = GrowthLimit - mapped;
        if (need > room)
        {
            reason = OutOfMemoryReason.ArenaExhausted;
            return false;
        }
        if (need > allowed)
        {
            reason = OutOfMemoryReason.GrowthLimit;
            return false;
        }
        ask = Math.Min(ask, Math.Min(room, allowed));
        ask &= ~(long)HeapConstants.PageMask;
        reason = default;

        nuint start = _arenaUsed;
        nuint end = start + (nuint)ask;
        // Spans array and bitmap first, so that any reader who sees the new ArenaUsed finds them mapped.
        nuint spansNeed = RoundOsPage(PageIndex(end) * (nuint)sizeof(nuint));
        if (spansNeed > _spansMapped)
        {
            OsMemory.Commit(_layout.SpansStart + _spansMapped, spansNeed - _spansMapped);
            _spansMapped = spansNeed;
        }
        nuint bitmapNeed = RoundOsPage((end - _layout.ArenaStart) >> 4);
        if (bitmapNeed > _bitmapMapped)
        {
            OsMemory.Commit(_layout.BitmapStart + _bitmapMapped, bitmapNeed - _bitmapMapped);
            _bitmapMapped = bitmapNeed;
        }
        OsMemory.Commit(start, (nuint)ask);
        Volatile.Write(ref _arenaUsed, end);

        MSpan* s = NewSpan();
        s->StartAddr = start;
        s->NPages = (nuint)ask >> HeapConstants.PageShift;
        s->NeedZero = 0;                                   // fresh pages read as zero
        s->UnusedSince = Stopwatch.GetTimestamp();
        InsertFreeCoalescing(s);
        return true;
    }

    /// <summary>
    /// Go's scavenger: returns to the OS the free runs idle for longer than the delay (all of them when
    /// <paramref name="force"/>). Returns the bytes released by this call.
    /// </summary>
    public long Scavenge(bool force)
    {
        long now = Stopwatch.GetTimestamp();
        long released = 0;
        lock (_lock)
        {
            for (int i = 0; i < MaxListPages; i++)
            {
                MSpan* list = &_free[i];
                for (MSpan* s = list->Next; s != list; s = s->Next)
                {
                    if (s->NPReleased == s->NPages) continue;
                    if (!force && now - s->UnusedSince < _scavengeDelayTicks) continue;
                    OsMemory.Release(s->StartAddr, s->Bytes);
                    long pages = (long)(s->NPages - s->NPReleased);
                    _pagesReleased += pages;
                    released += pages << HeapConstants.PageShift;
                    s->NPReleased = s->NPages;
                    s->NeedZero = 0;                           // MADV_DONTNEED pages read back as zero
                }
            }
            _scavengedTotal += released;
        }
        return released;
    }

    public MSpan* NewSpan() => (MSpan*)_spanAlloc.Alloc();

    private void ReleaseSpanStruct(MSpan* s) => _spanAlloc.Free(s);

    private nuint PageIndex(nuint addr) => (addr - _layout.ArenaStart) >> HeapConstants.PageShift;

    private static nuint RoundOsPage(nuint n)
    {
        nuint p = (nuint)OsMemory.OsPageSize;
        return (n + p - 1) & ~(p - 1);
    }

    /// <summary>Page-level figures; exact under the lock.</summary>
    public HeapPageStats ReadPageStats()
    {
        lock (_lock)
        {
            return new HeapPageStats(
                HeapSys: (long)(_arenaUsed - _layout.ArenaStart),
                InUse: _pagesInUse << HeapConstants.PageShift,
                Idle: _pagesFree << HeapConstants.PageShift,
                Released: _pagesReleased << HeapConstants.PageShift,
                SpansSys: (long)_spansMapped,
                BitmapSys: (long)_bitmapMapped,
                FixAllocSys: _spanAlloc.Sys + _tinyMaskAlloc.Sys,
                LargeAllocs: _largeAllocs,
                LargeFrees: _largeFrees,
                LargeAllocBytes: _largeAllocBytes,
                LargeFreeBytes: _largeFreeBytes,
                ScavengedTotal: _scavengedTotal);
        }
    }

    /// <summary>Runs <paramref name="walk"/> with the lock held (the verifier and span listings).</summary>
    public void WithLock(Action walk)
    {
        lock (_lock)
        {
            walk();
        }
    }

    public MSpan* FreeListSentinel(int index) => &_free[index];

    public void Dispose()
    {
        _spanAlloc.Dispose();
        _tinyMaskAlloc.Dispose();
        NativeMemory.Free(_free);
    }
}

internal readonly record struct HeapPageStats(
    long HeapSys, long InUse, long Idle, long Released, long SpansSys, long BitmapSys, long FixAllocSys,
    long LargeAllocs, long LargeFrees, long LargeAllocBytes, long LargeFreeBytes, long ScavengedTotal);
