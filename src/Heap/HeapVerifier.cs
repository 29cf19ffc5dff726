using System.Numerics;

namespace ClusterHeap.Heap;

/// <summary>The verifier's answer: the first broken invariant, precisely, or what it checked.</summary>
public sealed record VerifyReport(bool Ok, string? Problem, long Spans, long FreeRuns, long Objects, long Pages)
{
    public override string ToString() => Ok
        ? $"ok: {Spans} spans, {FreeRuns} free runs, {Objects} objects, {Pages} pages checked"
        : $"BROKEN: {Problem}";
}

/// <summary>A listing row: one span or free run (the shell's `spans`, the heap map).</summary>
public readonly record struct SpanInfo(
    nuint Start, long Pages, bool InUse, int SizeClass, bool Noscan, int ElemSize, int Objects, int Live,
    string Cache, long LeaseId, long ReleasedPages)
{
    /// <summary>
    /// An in-use span the last cycle left to sweep (its sweepgen 2 behind the heap's, GcSweep.cs): Live still counts the
    /// objects the mark did not reach, until the sweep frees them.
    /// </summary>
    public bool Unswept { get; init; }
}

/// <summary>
/// Checks every invariant of docs/DESIGN.md §6 that a node can check alone, with the world stopped and every lock
/// held, and reports the first broken one with the addresses involved. The walk is linear in mapped arena.
/// </summary>
internal sealed unsafe class HeapVerifier(MHeap mheap, MCentral[] centrals, MemStats stats,
    IReadOnlyList<MCache> caches, IReadOnlyCollection<long> leases)
{
    private readonly HeapBitmap _bitmap = mheap.Bitmap;
    private readonly Dictionary<nuint, int> _stacked = [];     // address on an mcache free stack → its span class
    private readonly Dictionary<nuint, int> _openTiny = [];    // an mcache's open tiny block → its bump offset
    private readonly Dictionary<nint, bool> _large = [];        // a span on mheap's large lists → on the unswept one
    private readonly uint _sweepGen = mheap.SweepGen;

    /// <summary>
    /// A mark is open — a concurrent mark between its pauses, or a coordinated session (GcMarkSession.cs) between its
    /// steps, which the verifier may run between since the session holds the world lock per step only: swept spans
    /// carry its marks (born-marked objects, the marker's).
    /// </summary>
    public bool Marking { get; init; }
    private long _spans, _freeRuns, _objects, _bytes, _pagesInUse, _pagesFree, _pagesReleased;

    private sealed class Broken(string message) : Exception(message);

    public VerifyReport Run()
    {
        try
        {
            CheckStacks();
            CollectOpenTinyBlocks();
            CollectLargeLists();
            WalkPages();
            foreach (nuint block in _openTiny.Keys) Fail($"an mcache bumps into tiny block 0x{block:x}, which is not an open tiny block");
            foreach (nint span in _large.Keys) Fail($"span 0x{((MSpan*)span)->StartAddr:x} is on mheap's large lists but is no in-use large span");
            CheckFreeLists();
            CheckCachedCounts();
            CheckTotals();
            return new VerifyReport(true, null, _spans, _freeRuns, _objects, _pagesInUse + _pagesFree);
        }
        catch (Broken b)
        {
            return new VerifyReport(false, b.Message, _spans, _freeRuns, _objects, _pagesInUse + _pagesFree);
        }
    }

    private static void Fail(string message) => throw new Broken(message);

    /// <summary>
    /// Every entry of a free stack is an idle slot still allocated, with the freed mark in its nibble: a freed object
    /// (MCache.FreeStack.cs) or, on the tiny span class's stack, a dead tiny block (MCache.Tiny.cs); in that
    /// class the slot's mask has IsTiny clear.
    /// </summary>
    private void CheckStacks()
    {
        nuint used = mheap.ArenaUsed;
        foreach (MCache cache in caches)
        {
            for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
            {
                ReadOnlySpan<nuint> stack = cache.Stacked(spc);
                if (stack.Length > MCache.StackLimitOf(spc)) Fail($"free stack of span class {spc} holds {stack.Length} objects, over its limit {MCache.StackLimitOf(spc)}");
                foreach (nuint a in stack)
                {
                    if (!_stacked.TryAdd(a, spc)) Fail($"object 0x{a:x} is on a free stack twice");
                    if (a < mheap.ArenaStart || a >= used) Fail($"free stack of span class {spc} holds 0x{a:x}, outside the arena in use");
                    MSpan* s = mheap.SpanOf(a);
                    if (s == null || s->State != SpanState.InUse || s->SpanClass != spc) Fail($"stacked object 0x{a:x} is not in an in-use span of span class {spc}");
                    long offset = (long)(a - s->StartAddr);
                    int index = (int)(offset / s->ElemSize);
                    if (offset % s->ElemSize != 0 || index >= s->NElems) Fail($"stacked object 0x{a:x} is not a slot start of span 0x{s->StartAddr:x}");
                    if (!s->IsAllocated(index) || s->IsFreedWhileCached(index)) Fail($"stacked object 0x{a:x}: its slot is not held allocated for the stack");
                    if (_bitmap.Get(a) != HeapBitmap.Freed) Fail($"stacked object 0x{a:x}: bitmap nibble 0x{_bitmap.Get(a):x} is not the freed mark");
                    if (spc == TinyBlock.SpanClass && (s->TinyMasks[index] & TinyBlock.IsTiny) != 0) Fail($"stacked slot 0x{a:x}: its mask still says tiny block");
                }
            }
        }
    }

    /// <summary>
    /// Each mcache's open tiny block (not full). The page walk checks that these are exactly the tiny blocks not
    /// closed: a block open with no mcache behind it could never die, and its slot would leak.
    /// </summary>
    private void CollectOpenTinyBlocks()
    {
        foreach (MCache cache in caches)
        {
            (nuint block, int offset) = cache.OpenTinyBlock;
            if (block != 0 && !_openTiny.TryAdd(block, offset)) Fail($"tiny block 0x{block:x} is open in two mcaches");
        }
    }

    /// <summary>The spans on mheap's large lists (swept, unswept); the page walk checks each in-use large span against them.</summary>
    private void CollectLargeLists()
    {
        for (int unswept = 0; unswept < 2; unswept++)
        {
            MSpan* head = mheap.LargeList(unswept);
            for (MSpan* s = head->Next; s != head; s = s->Next)
            {
                if (!_large.TryAdd((nint)s, unswept == 1)) Fail($"span 0x{s->StartAddr:x} is on mheap's large lists twice");
            }
        }
    }

    /// <summary>
    /// The collector's state of one in-use span: swept this cycle (no marks left), or 2 behind and still holding the
    /// last mark's verdict; only an uncached span can wait, and it waits on its unswept list.
    /// </summary>
    private void CheckSweepState(MSpan* s, bool onUnsweptList)
    {
        bool unswept = s->SweepGen == _sweepGen - 2;
        if (!unswept && s->SweepGen != _sweepGen) Fail($"span 0x{s->StartAddr:x} has sweepgen {s->SweepGen}, heap's is {_sweepGen}: neither swept nor waiting");
        if (!unswept && s->HasMarks && !Marking) Fail($"swept span 0x{s->StartAddr:x} still has mark bits");
        if (unswept && s->Cache != SpanCache.None) Fail($"unswept span 0x{s->StartAddr:x} is held by an {(s->Cache == SpanCache.MCache ? "mcache" : "lease")}");
        if (unswept != onUnsweptList) Fail($"span 0x{s->StartAddr:x} is {(unswept ? "unswept" : "swept")} but {(onUnsweptList ? "on" : "not on")} an unswept list");
    }

    private void WalkPages()
    {
        nuint start = mheap.ArenaStart, used = mheap.ArenaUsed;
        nuint p = start;
        var cachedBy = new Dictionary<nint, int>();
        for (int i = 0; i < caches.Count; i++)
        {
            for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
            {
                MSpan* c = caches[i].CachedSpan(spc);
                if (c == null) continue;
                if (!cachedBy.TryAdd((nint)c, i)) Fail($"span 0x{c->StartAddr:x} is cached by two mcaches");
                if (c->SpanClass != spc) Fail($"mcache holds span 0x{c->StartAddr:x} of span class {c->SpanClass} under span class {spc}");
            }
        }
        while (p < used)
        {
            MSpan* s = mheap.SpanOf(p);
            if (s == null) Fail($"arena page 0x{p:x} maps to no span in the spans array");
            if (s->StartAddr != p) Fail($"arena page 0x{p:x} maps to span 0x{s->StartAddr:x}, which does not start there");
            if (s->NPages == 0 || s->EndAddr > used) Fail($"span 0x{p:x} of {s->NPages} pages runs past arena_used 0x{used:x}");
            if (s->State == SpanState.InUse) CheckInUse(s, cachedBy);
            else if (s->State == SpanState.Free) CheckFreeRun(s);
            else Fail($"span 0x{p:x} has state {s->State}");
            p = s->EndAddr;
        }
        if (p != used) Fail($"the page walk ended at 0x{p:x}, not at arena_used 0x{used:x}");
    }

    private void CheckInUse(MSpan* s, Dictionary<nint, int> cachedBy)
    {
        _spans++;
        _pagesInUse += (long)s->NPages;
        for (nuint i = 0; i < s->NPages; i++)
        {
            nuint page = s->StartAddr + (i << HeapConstants.PageShift);
            if (mheap.SpanOf(page) != s) Fail($"page 0x{page:x} of in-use span 0x{s->StartAddr:x} maps elsewhere in the spans array");
        }
        if (s->IsLarge)
        {
            if (s->NElems != 1 || s->AllocCount != 1) Fail($"large span 0x{s->StartAddr:x} holds {s->AllocCount} of {s->NElems} objects, not 1 of 1");
            if ((_bitmap.Get(s->StartAddr) & HeapBitmap.Boundary) == 0) Fail($"large object 0x{s->StartAddr:x} has no boundary bit");
            if (!_large.Remove((nint)s, out bool onUnswept)) Fail($"large span 0x{s->StartAddr:x} is on neither of mheap's large lists");
            CheckSweepState(s, onUnswept);
            CheckNoBoundaries(s->StartAddr + HeapConstants.PtrSize, s->EndAddr, s);
            _objects++;
            _bytes += (long)s->Bytes;
            return;
        }
        int c = s->SizeClass;
        if (s->ElemSize != SizeClasses.SizeOf(c) || s->NElems != SizeClasses.ObjectsOf(c) || (int)s->NPages != SizeClasses.PagesOf(c))
            Fail($"span 0x{s->StartAddr:x} of class {c} has {s->NElems}×{s->ElemSize} B in {s->NPages} pages, not the class's geometry");
        int alloc = s->PopCount(freed: false), freed = s->PopCount(freed: true);
        if (alloc != s->AllocCount) Fail($"span 0x{s->StartAddr:x}: allocCount {s->AllocCount} but {alloc} alloc bits set");
        if (freed != s->FreedCount) Fail($"span 0x{s->StartAddr:x}: freedCount {s->FreedCount} but {freed} freed-while-cached bits set");
        for (int w = 0; w < MSpan.BitWords; w++)
        {
            if ((s->FreedBits[w] & ~s->AllocBits[w]) != 0) Fail($"span 0x{s->StartAddr:x}: a slot is marked freed while cached but not allocated");
            int lo = w << 6;
            ulong beyond = lo >= s->NElems ? ~0UL : s->NElems - lo >= 64 ? 0 : ~0UL << (s->NElems - lo);
            if ((s->AllocBits[w] & beyond) != 0) Fail($"span 0x{s->StartAddr:x}: alloc bits set past its {s->NElems} slots");
        }
        CheckCacheState(s, cachedBy);
        CheckSlots(s);
    }

    private readonly Dictionary<int, int> _cachedPerClass = [];   // span class → spans found cached (mcache or lease)

    /// <summary>Each mcentral's count of cached spans (its O(1) sweep start relies on it) matches the spans found cached.</summary>
    private void CheckCachedCounts()
    {
        for (int spc = 2; spc < centrals.Length; spc++)
        {
            int found = _cachedPerClass.GetValueOrDefault(spc);
            if (centrals[spc].CachedSpans != found) Fail($"mcentral of span class {spc} counts {centrals[spc].CachedSpans} cached spans, the walk found {found}");
        }
    }

    private void CheckCacheState(MSpan* s, Dictionary<nint, int> cachedBy)
    {
        MCentral central = centrals[s->SpanClass];
        CentralList list = central.ListOf(s);
        bool listed = list != CentralList.None, partial = list == CentralList.Partial;
        CheckSweepState(s, list == CentralList.Unswept);
        if (s->Cache != SpanCache.None) _cachedPerClass[s->SpanClass] = _cachedPerClass.GetValueOrDefault(s->SpanClass) + 1;
        switch (s->Cache)
        {
            case SpanCache.None:
                if (s->FreedCount != 0) Fail($"uncached span 0x{s->StartAddr:x} has {s->FreedCount} unfolded frees");
                if (s->AllocCount == 0) Fail($"uncached span 0x{s->StartAddr:x} has no live objects but was not returned to mheap");
                if (!listed) Fail($"uncached span 0x{s->StartAddr:x} is on no mcentral list of span class {s->SpanClass}");
                if (list != CentralList.Unswept && partial != (s->AllocCount < s->NElems)) Fail($"span 0x{s->StartAddr:x} with {s->AllocCount}/{s->NElems} allocated is on the {(partial ? "partial" : "full")} list");
                if (cachedBy.ContainsKey((nint)s)) Fail($"span 0x{s->StartAddr:x} is in an mcache but not marked cached");
                break;
            case SpanCache.MCache:
                if (!cachedBy.ContainsKey((nint)s)) Fail($"span 0x{s->StartAddr:x} is marked cached but no mcache holds it");
                if (!listed || partial) Fail($"cached span 0x{s->StartAddr:x} is not on its mcentral's full list");
                for (int i = 0; i < s->FreeIndex && i < s->NElems; i++)
                {
                    if (!s->IsAllocated(i)) Fail($"cached span 0x{s->StartAddr:x}: slot {i} below freeindex {s->FreeIndex} is not allocated");
                }
                break;
            case SpanCache.Lease:
                if (!leases.Contains(s->LeaseId)) Fail($"span 0x{s->StartAddr:x} is marked leased under unknown lease {s->LeaseId}");
                if (cachedBy.ContainsKey((nint)s)) Fail($"leased span 0x{s->StartAddr:x} is also in an mcache");
                break;
        }
    }

    /// <summary>Boundary bits exactly at live slot starts; tiny masks consistent; counts live objects and bytes.</summary>
    private void CheckSlots(MSpan* s)
    {
        nuint elem = (nuint)s->ElemSize;
        int freeSlots = 0;
        for (int i = 0; i < s->NElems; i++)
        {
            nuint slot = s->StartAddr + (nuint)i * elem;
            bool allocated = s->IsAllocated(i);
            if (!allocated) freeSlots++;
            bool boundary = (_bitmap.Get(slot) & HeapBitmap.Boundary) != 0;
            // A stacked slot's nibble is the freed mark (CheckStacks), so only a slot without boundary needs the look-up.
            bool live = allocated && !s->IsFreedWhileCached(i) && (boundary || !_stacked.ContainsKey(slot));
            if (boundary != live)
            {
                string state = live ? "holds a live object" : !allocated ? "is free" : s->IsFreedWhileCached(i) ? "was freed while cached" : "is on a free stack";
                Fail($"slot 0x{slot:x} (class {s->SizeClass}): boundary bit {(boundary ? "set" : "clear")} but the slot {state}");
            }
            CheckNoBoundaries(slot + HeapConstants.PtrSize, slot + elem, s);
            ulong mask = s->TinyMasks != null ? s->TinyMasks[i] : 0;
            if ((mask & TinyBlock.IsTiny) != 0)
            {
                if (!live) Fail($"tiny block 0x{slot:x} is marked tiny but its slot is not live");
                if (TinyBlock.IsClosed(mask) && TinyBlock.Live(mask) == 0) Fail($"tiny block 0x{slot:x} is closed with nothing live but was not freed");
                if (!TinyBlock.IsClosed(mask))
                {
                    if (!_openTiny.Remove(slot, out int offset)) Fail($"tiny block 0x{slot:x} is open but no mcache bumps into it, so it can never die");
                    if (TinyBlock.BumpEnd(mask) != offset) Fail($"tiny block 0x{slot:x}: its objects end at byte {TinyBlock.BumpEnd(mask)} but its mcache bumps from {offset}");
                }
                if ((TinyBlock.Freed(mask) & ~TinyBlock.Starts(mask)) != 0) Fail($"tiny block 0x{slot:x} has a freed bit where no object started");
                if (live)
                {
                    _objects += BitOperations.PopCount(TinyBlock.Live(mask));
                    _bytes += s->ElemSize;
                }
            }
            else if (live)
            {
                _objects++;
                _bytes += s->ElemSize;
            }
        }
        if (s->AllocCount + freeSlots != s->NElems) Fail($"span 0x{s->StartAddr:x}: allocCount {s->AllocCount} + {freeSlots} free slots != nelems {s->NElems}");
        nuint tail = s->StartAddr + (nuint)s->NElems * elem;
        CheckNoBoundaries(tail, s->EndAddr, s);
    }

    private void CheckNoBoundaries(nuint from, nuint to, MSpan* s)
    {
        nuint a = _bitmap.FirstBoundary(from, to);
        if (a != 0) Fail($"word 0x{a:x} inside span 0x{s->StartAddr:x} has a boundary bit but starts no object");
    }

    private void CheckFreeRun(MSpan* s)
    {
        _freeRuns++;
        _pagesFree += (long)s->NPages;
        _pagesReleased += (long)s->NPReleased;
        if (s->NPReleased > s->NPages) Fail($"free run 0x{s->StartAddr:x}: {s->NPReleased} released of {s->NPages} pages");
        nuint last = s->EndAddr - HeapConstants.PageSize;
        if (mheap.SpanOf(last) != s) Fail($"free run 0x{s->StartAddr:x}: its last page does not map to it");
        for (nuint a = s->StartAddr + HeapConstants.PageSize; a < last; a += HeapConstants.PageSize)
        {
            if (mheap.SpanOf(a) != null) Fail($"free run 0x{s->StartAddr:x}: interior page 0x{a:x} maps to a span");
        }
        if (s->StartAddr > mheap.ArenaStart)
        {
            MSpan* before = mheap.SpanOf(s->StartAddr - HeapConstants.PageSize);
            if (before != null && before->State == SpanState.Free) Fail($"free runs 0x{before->StartAddr:x} and 0x{s->StartAddr:x} are adjacent but not coalesced");
        }
        // In chunks: a free run can be larger than a span of bytes can address.
        const int Chunk = 1 << 30;
        nuint bitmap = mheap.Bitmap.ByteOf(s->StartAddr), bitmapBytes = s->Bytes >> 4;
        for (nuint done = 0; done < bitmapBytes; done += Chunk)
        {
            var bits = new ReadOnlySpan<byte>((void*)(bitmap + done), (int)Math.Min(bitmapBytes - done, Chunk));
            int dirty = bits.IndexOfAnyExcept((byte)0);
            if (dirty >= 0) Fail($"free run 0x{s->StartAddr:x}: bitmap not clear at word 0x{s->StartAddr + (done + (nuint)dirty) * 16:x}");
        }
    }

    private void CheckFreeLists()
    {
        long listed = 0;
        for (int i = 0; i < MHeap.MaxListPages; i++)
        {
            MSpan* list = mheap.FreeListSentinel(i);
            for (MSpan* s = list->Next; s != list; s = s->Next)
            {
                listed++;
                if (s->State != SpanState.Free) Fail($"span 0x{s->StartAddr:x} on mheap free list {i} is not free");
                int want = s->NPages < MHeap.MaxListPages ? (int)s->NPages : 0;
                if (want != i) Fail($"free run 0x{s->StartAddr:x} of {s->NPages} pages is on free list {i}");
                if (mheap.SpanOf(s->StartAddr) != s) Fail($"free run 0x{s->StartAddr:x} on a free list is not in the spans array");
            }
        }
        if (listed != _freeRuns) Fail($"{listed} runs on mheap free lists but {_freeRuns} free runs in the arena");
    }

    private void CheckTotals()
    {
        const int P = HeapConstants.PageShift;
        if (stats.HeapInuse != _pagesInUse << P) Fail($"HeapInuse {stats.HeapInuse} but in-use spans hold {_pagesInUse << P} bytes");
        if (stats.HeapIdle != _pagesFree << P) Fail($"HeapIdle {stats.HeapIdle} but free runs hold {_pagesFree << P} bytes");
        if (stats.HeapReleased != _pagesReleased << P) Fail($"HeapReleased {stats.HeapReleased} but free runs have {_pagesReleased << P} bytes released");
        if (stats.HeapSys != stats.HeapIdle + stats.HeapInuse) Fail($"HeapSys {stats.HeapSys} != HeapIdle {stats.HeapIdle} + HeapInuse {stats.HeapInuse}");
        if (stats.HeapObjects != _objects) Fail($"HeapObjects (Mallocs {stats.Mallocs} - Frees {stats.Frees}) = {stats.HeapObjects} but the heap holds {_objects} live objects");
        if (stats.HeapAlloc != _bytes) Fail($"HeapAlloc {stats.HeapAlloc} but live slots and large spans hold {_bytes} bytes");
        long bySize = stats.LargeObjects;
        foreach (SizeClassStats row in stats.BySize) bySize += row.Live;
        if (bySize != stats.HeapObjects) Fail($"BySize live objects plus large objects sum to {bySize}, HeapObjects is {stats.HeapObjects}");
    }
}
