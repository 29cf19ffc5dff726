using System.Diagnostics;
using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace ClusterHeap.Heap;

/// <summary>
/// mcache: one owner's cache (Go's per-P mcache): one span per span class to allocate from without locks,
/// plus the tiny block (MCache.Tiny.cs), plus a free stack per span class (MCache.FreeStack.cs). See NodeHeap.cs for the path
/// above and below it.
/// <para>
/// Malloc fast path (Go's mallocgc): size 0 returns the zero base; noscan sizes under 16 bytes bump inside the
/// tiny block; other small sizes take the object the owner freed last into this class's free stack, or else the
/// next free slot of the cached span with the allocCache bit trick (count trailing zeros of the inverted alloc
/// bits); then mark the bitmap and clear the slot if it may hold old data. A full span is swapped for another
/// from mcentral (refill, out of line); large sizes take a span of their own from mheap.
/// </para>
/// Concurrency model: an mcache is never used by two threads at once (a grain activation or one thread owns
/// it). Its counters are written only by the owner; ReadMemStats reads them with the world stopped.
/// </summary>
public sealed unsafe partial class MCache
{
    private readonly NodeHeap _heap;
    private readonly MHeap _mheap;
    private readonly HeapBitmap _bitmap;
    private readonly MSpan** _alloc;           // [NumSpanClasses]; EmptySpan when nothing is cached
    private readonly MSpan** _spans;           // the node's spans array (mheap's), for the free path
    private readonly nuint _arenaStart;
    private readonly bool _poisonOnFree;

    // Counters, owner-written. SlotAllocs[c]: slots taken from spans; StackPops(c): objects handed out again from a
    // free stack. Objects allocated = SlotAllocs[c] + StackPops(c) for small classes, except class 2, whose slots
    // include tiny blocks (TinyBlocks opened, TinyBlockReuses of them on an idle slot popped from the tiny class's
    // stack rather than a new one): there objects = SlotAllocs[2] + TinyBlockReuses - TinyBlocks + TinyAllocs +
    // StackPops(2). LargeAllocs for class 0.
    internal readonly long[] SlotAllocs = new long[SizeClasses.NumClasses];
    internal long TinyAllocs;
    internal long TinyBlocks;
    internal long LargeAllocs;

    /// <summary>Objects of a size class this cache's owner freed without mcentral: onto free stacks and, in the tiny class, lock-free tiny frees.</summary>
    internal long OwnerFrees(int sizeClass) => StackPushes(sizeClass) + (sizeClass == SizeClasses.TinySizeClass ? TinyFrees : 0);

    /// <summary>Allocations that reused a slot still allocated: stack pops and, in the tiny class, blocks opened on an idle slot of its stack.</summary>
    internal long SlotReuses(int sizeClass) => StackPops(sizeClass) + (sizeClass == SizeClasses.TinySizeClass ? TinyBlockReuses : 0);

    /// <summary>Objects allocated through this cache, per size class (class 0: large).</summary>
    internal long ObjectMallocs(int sizeClass) => sizeClass switch
    {
        0 => LargeAllocs,
        SizeClasses.TinySizeClass => SlotAllocs[sizeClass] + TinyBlockReuses - TinyBlocks + TinyAllocs + StackPops(sizeClass),
        _ => SlotAllocs[sizeClass] + StackPops(sizeClass),
    };

    internal MCache(NodeHeap heap, MHeap mheap)
    {
        _heap = heap;
        _mheap = mheap;
        _bitmap = mheap.Bitmap;
        _alloc = (MSpan**)NativeMemory.Alloc((nuint)(SizeClasses.NumSpanClasses * sizeof(MSpan*)));
        for (int i = 0; i < SizeClasses.NumSpanClasses; i++) _alloc[i] = NodeHeap.EmptySpan;
        _stacks = (nuint*)NativeMemory.Alloc((nuint)(SizeClasses.NumSpanClasses * StackSlots * sizeof(nuint)));
        _heads = NewStackHeads();
        _spans = (MSpan**)heap.Layout.SpansStart;
        _arenaStart = heap.Layout.ArenaStart;
        _poisonOnFree = heap.Options.PoisonOnFree;
    }

    internal bool Released { get; private set; }

    // Out of memory, two ways: Malloc throws (a program that cannot go on), TryMalloc returns the reason (a caller with
    // somewhere else to go: the cluster tier asks for a grant or a lease). Both run the one path below, where the
    // place that finds no memory (Refill, MallocLarge) throws unless _oomReturns is set, and otherwise records why in
    // _oomReason and hands back 0, which every step above passes up without touching the heap.
    private bool _oomReturns;
    private OutOfMemoryReason _oomReason;

    /// <summary>
    /// <see cref="Malloc"/> that says why not instead of throwing: false, with the limit that was hit in
    /// <paramref name="reason"/> (the arena, or the growth limit the cluster's grant sets), when there is no memory.
    /// Sizes no arena could hold still throw <see cref="InvalidSizeException"/>: that is a caller's bug, not an outcome.
    /// </summary>
    public bool TryMalloc(nuint size, bool noscan, out nuint address, out OutOfMemoryReason reason)
    {
        _oomReturns = true;
        try
        {
            address = Malloc(size, noscan);
        }
        finally
        {
            _oomReturns = false;
        }
        reason = _oomReason;
        return address != 0;
    }

    /// <summary>Where a size-class allocation found no memory: throws, or (under TryMalloc) records why and returns null.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private MSpan* OutOfMemory(OutOfMemoryReason reason, long requested)
    {
        if (!_oomReturns) _heap.ThrowOutOfMemory(reason, requested);
        _oomReason = reason;
        return null;
    }

    /// <summary>
    /// A concurrent mark runs: every object this cache hands out is born marked (Go's allocate-black, gcmarknewobject),
    /// so the sweep that follows keeps it. Set with the world stopped (GcConcurrent.cs) or as the cache is created.
    /// </summary>
    internal bool BornMarked;

    /// <summary>
    /// Allocates <paramref name="size"/> bytes (Go's mallocgc). <paramref name="noscan"/>: the object holds no
    /// pointers. <paramref name="needzero"/>: the memory must read as zero (false lets a reused slot keep old bytes).
    /// Throws <see cref="HeapOutOfMemoryException"/> naming the limit hit (<see cref="TryMalloc"/> returns it instead),
    /// <see cref="InvalidSizeException"/> for sizes no arena could hold.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public nuint Malloc(nuint size, bool noscan = true, bool needzero = true)
    {
        if (size - 1 < SizeClasses.MaxSmallSize)             // 1..32768; size 0 wraps around
        {
            if (noscan && size < SizeClasses.TinySize) return MallocTiny(size);
            int sizeClass = SizeClasses.ClassOf(size);
            int spc = sizeClass << 1 | (noscan ? 1 : 0);
            nuint v = TakeSlot(spc, sizeClass, out nuint elem, out bool dirty);
            if (v == 0) return 0;                            // out of memory under TryMalloc
            if (noscan) _bitmap.Set(v, HeapBitmap.Nibble(true, WordKind.Scalar));
            else _bitmap.MarkAllocated(v, elem, noscan: false, default);
            if (needzero && dirty) Zero.Small(v, elem);
            if (BornMarked) MHeap.MarkBorn(_spans, _arenaStart, v);
            return v;
        }
        return size == 0 ? _heap.ZeroBase : MallocLarge(size, noscan, needzero, default);
    }

    /// <summary>
    /// A slot for a small object: the top of the span class's free stack, else the cached span's next free slot
    /// (refilling when it is full). <paramref name="dirty"/>: the slot may hold old bytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nuint TakeSlot(int spc, int sizeClass, out nuint elem, out bool dirty)
    {
        StackHead* head = &_heads[spc];
        int depth = head->Depth;
        if (depth != 0)
        {
            head->Depth = --depth;
            head->Pops++;
            elem = (nuint)head->ElemSize;
            dirty = true;
            return _stacks[spc * StackSlots + depth];
        }
        MSpan* s = _alloc[spc];
        nuint v = NextFreeFast(s);
        if (v == 0)
        {
            v = NextFree(spc);
            if (v == 0)
            {
                (elem, dirty) = (0, false);                  // out of memory under TryMalloc
                return 0;
            }
            s = _alloc[spc];
        }
        SlotAllocs[sizeClass]++;
        elem = (nuint)s->ElemSize;
        dirty = s->NeedZero != 0;
        return v;
    }

    /// <summary>
    /// A typed allocation: bit i of <paramref name="pointerMask"/> says word i holds a pointer (Go's heapBitsSetType).
    /// An empty mask on a scan object means every word may hold one.
    /// </summary>
    public nuint MallocTyped(nuint size, ReadOnlySpan<ulong> pointerMask, bool needzero = true)
    {
        if (size == 0) return _heap.ZeroBase;
        if (size > SizeClasses.MaxSmallSize) return MallocLarge(size, noscan: false, needzero, pointerMask);
        int sizeClass = SizeClasses.ClassOf(size);
        nuint v = TakeSlot(sizeClass << 1, sizeClass, out nuint elem, out bool dirty);
        _bitmap.MarkAllocated(v, elem, noscan: false, pointerMask);
        if (needzero && dirty) NativeMemory.Clear((void*)v, elem);
        if (BornMarked) MHeap.MarkBorn(_spans, _arenaStart, v);
        return v;
    }

    /// <summary>
    /// Go's nextFreeFast: the next free slot of the cached span from its allocCache, or 0 when the cache word
    /// is used up (or the span is full, or it is the empty span).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static nuint NextFreeFast(MSpan* s)
    {
        ulong cache = s->AllocCache;
        if (cache != 0)
        {
            int bit = BitOperations.TrailingZeroCount(cache);
            int result = s->FreeIndex + bit;
            if (result < s->NElems)
            {
                int next = result + 1;
                if ((next & 63) == 0 && next != s->NElems) return 0;   // the slow path reloads the cache word
                s->AllocCache = cache >> bit >> 1;
                s->FreeIndex = next;
                s->AllocBits[result >> 6] |= 1UL << result;
                s->AllocCount++;
                nuint v = s->StartAddr + (nuint)result * (nuint)s->ElemSize;
                if (Sse.IsSupported) Sse.PrefetchNonTemporal((void*)(v + (nuint)s->ElemSize));   // Go 1.4 mallocgc's prefetchnta
                return v;
            }
        }
        return 0;
    }

    /// <summary>Go's nextFree: the next free slot of the cached span, refilling from mcentral when it is full.</summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private nuint NextFree(int spc)
    {
        MSpan* s = _alloc[spc];
        int index = s->NElems == 0 ? 0 : s->NextFreeIndex();
        if (index == s->NElems)
        {
            s = Refill(spc);
            if (s == null) return 0;                         // out of memory under TryMalloc
            index = s->FreeIndex;
        }
        Debug.Assert(!s->IsAllocated(index));
        s->AllocBits[index >> 6] |= 1UL << index;
        s->AllocCount++;
        s->FreeIndex = index + 1;
        s->RefillAllocCache();
        return s->StartAddr + (nuint)index * (nuint)s->ElemSize;
    }

    /// <summary>Go's mcache.refill: hands the full span back to mcentral and caches one with free slots.</summary>
    private MSpan* Refill(int spc)
    {
        ObjectDisposedException.ThrowIf(Released, this);     // a released cache holds only EmptySpan: every small path ends here
        _heap.HelpGc();                                      // shouldhelpgc: a cycle flushes this cache, old span included
        MSpan* old = _alloc[spc];
        _alloc[spc] = NodeHeap.EmptySpan;
        MSpan* s = _heap.MCentralOf(spc).Exchange(old == NodeHeap.EmptySpan ? null : old, SpanCache.MCache, out OutOfMemoryReason reason);
        if (s == null && _heap.CollectBeforeOutOfMemory()) s = _heap.MCentralOf(spc).Exchange(null, SpanCache.MCache, out reason);
        if (s == null) return OutOfMemory(reason, SizeClasses.SizeOf(spc >> 1));   // _alloc[spc] stays EmptySpan
        _alloc[spc] = s;
        return s;
    }

    private nuint MallocLarge(nuint size, bool noscan, bool needzero, ReadOnlySpan<ulong> pointerMask)
    {
        ObjectDisposedException.ThrowIf(Released, this);
        if (size > (nuint)_mheap.ArenaSize)
        {
            HeapThrow.InvalidSize($"cannot allocate {size} bytes: larger than the whole {_mheap.ArenaSize}-byte arena");
        }
        nuint npages = (size + HeapConstants.PageMask) >> HeapConstants.PageShift;
        _heap.HelpGc();                                      // shouldhelpgc: a large allocation
        MSpan* s = _heap.AllocLargeSpan(npages, noscan, out OutOfMemoryReason reason);
        if (s == null && _heap.CollectBeforeOutOfMemory()) s = _heap.AllocLargeSpan(npages, noscan, out reason);
        if (s == null) return (nuint)OutOfMemory(reason, (long)size);
        s->NElems = 1;
        s->AllocCount = 1;
        s->AllocBits[0] = 1;
        nuint v = s->StartAddr;
        _bitmap.MarkAllocated(v, noscan ? (nuint)HeapConstants.PtrSize : npages << HeapConstants.PageShift, noscan, pointerMask);
        if (needzero && s->NeedZero != 0) NativeMemory.Clear((void*)v, npages << HeapConstants.PageShift);
        if (BornMarked) MHeap.MarkBorn(_spans, _arenaStart, v);
        LargeAllocs++;
        return v;
    }

    /// <summary>
    /// A collection starts (world stopped, NodeHeap.Gc.cs): the tiny block is closed, the free stacks emptied and every
    /// cached span given back, as Go's mark termination flushes every mcache; the cache stays usable and refills.
    /// </summary>
    internal void FlushForGc()
    {
        if (Released) return;
        CloseTinyBlock();
        for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
        {
            StackHead* head = &_heads[spc];
            if (head->Depth != 0) head->Depth = Flush(spc, head->Depth, head->Depth);
            MSpan* s = _alloc[spc];
            if (s == NodeHeap.EmptySpan) continue;
            _alloc[spc] = NodeHeap.EmptySpan;
            _heap.MCentralOf(spc).UncacheSpan(s);
        }
    }

    /// <summary>Gives every cached span and the tiny block back (Go's releaseAll). Called by NodeHeap.ReleaseCache.</summary>
    internal void ReleaseAll()
    {
        CloseTinyBlock();      // first: a block that dies here goes onto the tiny class's stack, which FlushStacks empties
        FlushStacks();
        for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
        {
            MSpan* s = _alloc[spc];
            if (s == NodeHeap.EmptySpan) continue;
            _alloc[spc] = NodeHeap.EmptySpan;
            _heap.MCentralOf(spc).UncacheSpan(s);
        }
        // _alloc stays (every entry EmptySpan) so a stray Malloc on a released cache reaches Refill and throws
        // instead of reading freed memory; the finalizer frees it.
        Released = true;
    }

    ~MCache()
    {
        NativeMemory.Free(_alloc);
        NativeMemory.Free(_stacks);
        NativeMemory.Free(_heads);
    }

    /// <summary>The span cached for <paramref name="spc"/>, or null (verifier).</summary>
    internal MSpan* CachedSpan(int spc) => Released || _alloc[spc] == NodeHeap.EmptySpan ? null : _alloc[spc];
}
