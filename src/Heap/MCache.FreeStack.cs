using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace ClusterHeap.Heap;

/// <summary>
/// The mcache's free stacks: the owner's own frees of small objects, kept per span class and handed out again by
/// its next Malloc of that class, last in, first out — what glibc's tcache and tcmalloc's per-thread free lists do.
/// Go has nothing here because Go has no explicit free; without it every free takes its mcentral's lock and a
/// freed slot comes back only through a refill, a span at a time.
/// <para>
/// A stacked object is freed for everyone else at once: <see cref="TryFree"/> claims it in the heap bitmap
/// (<see cref="HeapBitmap.TryClaim"/>, the atomic step every free starts with, so a second free from any thread says
/// AlreadyFreed), it counts in Frees and not in HeapAlloc, and Read and Write refuse it. Only its slot stays
/// allocated in the span's alloc bits — so the span cannot go back to mheap under it — until the stack gives it back:
/// a full stack flushes its older half to mcentral in one lock hold, and ReleaseAll flushes everything.
/// </para>
/// <para>
/// A stack holds at most <see cref="StackLimitOf"/> objects: 64, or fewer so that it holds at most 32 KiB (at
/// least 2); large objects are never stacked. The tiny span class's stack (16-byte noscan) also keeps the slots of
/// dead tiny blocks (MCache.Tiny.cs). Worst case one mcache holds 32 KiB per span class in its stacks, about
/// what its cached spans hold anyway.
/// </para>
/// Invariants (the verifier checks them): every stacked address is the start of an allocated slot, not freed
/// while cached, in an in-use span of the stack's span class, with exactly the freed mark in its bitmap nibble, on
/// one stack only, and in the tiny span class with IsTiny clear in its mask; a stack never holds more than its
/// limit. Only the owner touches its stacks; the verifier and ReadMemStats read them with the world stopped.
/// </summary>
public sealed unsafe partial class MCache
{
    /// <summary>Entries per span class in <see cref="_stacks"/>: the largest stack limit.</summary>
    private const int StackSlots = 64;
    private const int StackBytes = 32 << 10;

    /// <summary>
    /// One span class's stack: its depth beside what the free and malloc fast paths need with it, and its counters
    /// (owner-written, on the same cache line).
    /// </summary>
    private struct StackHead
    {
        public int Depth;          // objects on the stack, ≤ Limit
        public int Limit;          // StackLimitOf(spc); 0 = never stacked, and 0 for every class after ReleaseAll
        public int ElemSize;       // the class's object size
        private readonly int _pad;
        public long Pushes;        // user frees pushed (the tiny class's dead blocks are not user frees)
        public long Pops;          // objects handed out again by Malloc (not tiny blocks reopened: TinyBlockReuses)
    }

    private readonly nuint* _stacks;           // [NumSpanClasses × StackSlots]: stack spc is _stacks[spc * StackSlots ..]
    private readonly StackHead* _heads;        // [NumSpanClasses]

    /// <summary>Objects of <paramref name="sizeClass"/> allocated from this cache's free stacks.</summary>
    internal long StackPops(int sizeClass) => _heads[sizeClass << 1].Pops + _heads[sizeClass << 1 | 1].Pops;

    /// <summary>Objects of <paramref name="sizeClass"/> freed onto this cache's free stacks (user frees).</summary>
    internal long StackPushes(int sizeClass) => _heads[sizeClass << 1].Pushes + _heads[sizeClass << 1 | 1].Pushes;

    /// <summary>
    /// Most objects the free stack of span class <paramref name="spc"/> holds; 0: never stacked — large objects and
    /// 8-byte noscan objects, which Malloc makes tiny (only a remote lessee hands out that class), so a stack of them
    /// would never be popped. The tiny span class's stack also keeps dead tiny blocks (MCache.Tiny.cs).
    /// </summary>
    internal static int StackLimitOf(int spc) =>
        spc < 2 || spc == (1 << 1 | 1) ? 0 : Math.Clamp(StackBytes / SizeClasses.SizeOf(spc >> 1), 2, StackSlots);

    /// <summary>Frees an object of this node from the cache's owner; throws <see cref="InvalidPointerException"/> for a bad pointer.</summary>
    public void Free(nuint address)
    {
        PointerError e = TryFree(address);
        if (e != PointerError.None) HeapThrow.InvalidPointer(e, address);
    }

    /// <summary>
    /// The owner's free (only the owner may call it, as with Malloc). It claims the object in the heap bitmap first,
    /// without a lock: once the claim succeeds a live object started at <paramref name="address"/> and its slot stays
    /// allocated, so its span can be read without a lock. A small object then goes onto this cache's free stack for its
    /// span class (a 16-byte noscan one also drops its slot's old tiny-block tombstones); a large one, or any object
    /// once the cache is released, is finished under its lock. A tiny object is
    /// freed through its block's mask (MCache.Tiny.cs). Anything else that cannot be claimed — interior,
    /// foreign, freed, never allocated — takes <see cref="NodeHeap.TryFree"/>, which frees it under the locks or says why not.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public PointerError TryFree(nuint address)
    {
        nuint arena = _arenaStart;
        if (address - arena >= _mheap.ArenaUsed - arena) return _heap.TryFree(address);
        if ((address & 7) == 0 && _bitmap.TryClaimObject(address))
        {
            MSpan* s = MHeap.SpanOf(_spans, arena, address);
            int spc = s->SpanClass;
            StackHead* head = &_heads[spc];
            // Never stacked: a large or lessee's object, a released cache, or a span still unswept since the last
            // mark (a slot of it handed out again before its sweep would be swept as garbage, GcSweep.cs).
            if (head->Limit == 0 || (_heap.SweepPending && s->SweepGen != _mheap.SweepGen)) return _heap.FreeClaimed(s, address);
            if ((spc & 1) == 0) _bitmap.ClearClaimed(address, (nuint)head->ElemSize, noscan: false);
            else if (spc == TinyBlock.SpanClass) s->TinyMasks[(int)((address - s->StartAddr) >> 4)] = 0;   // as FreeClaimedLocked
            if (_poisonOnFree) new Span<byte>((void*)address, head->ElemSize).Fill(NodeHeap.PoisonByte);
            int depth = head->Depth;
            if (depth == head->Limit) depth = Flush(spc, depth, depth / 2);
            _stacks[spc * StackSlots + depth] = address;
            head->Depth = depth + 1;
            head->Pushes++;
            // The top of the stack is the next object of this class handed out (and cleared): start loading its line.
            if (Sse.IsSupported) Sse.Prefetch0((void*)address);
            return PointerError.None;
        }
        return TryFreeTiny(address) ? PointerError.None : _heap.TryFree(address);
    }

    /// <summary>
    /// Gives the slots of the <paramref name="count"/> oldest entries of stack <paramref name="spc"/> (claimed slots,
    /// still allocated) back to mcentral in one lock hold and moves the rest down; returns the new depth.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int Flush(int spc, int depth, int count)
    {
        nuint* stack = _stacks + spc * StackSlots;
        MCentral central = _heap.MCentralOf(spc);
        using (central.Enter())
        {
            for (int i = 0; i < count; i++)
            {
                nuint a = stack[i];
                MSpan* s = MHeap.SpanOf(_spans, _arenaStart, a);
                int index = s->ObjectIndex(a);
                central.FreeSlotLocked(s, index, poison: false);
            }
        }
        int left = depth - count;
        Buffer.MemoryCopy(stack + count, stack, left * sizeof(nuint), left * sizeof(nuint));
        return left;
    }

    /// <summary>Empties every free stack into mcentral and stops stacking (ReleaseAll).</summary>
    private void FlushStacks()
    {
        for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
        {
            StackHead* head = &_heads[spc];
            head->Limit = 0;
            if (head->Depth != 0) head->Depth = Flush(spc, head->Depth, head->Depth);
        }
    }

    /// <summary>The objects on free stack <paramref name="spc"/> (verifier, span listing; world stopped).</summary>
    internal ReadOnlySpan<nuint> Stacked(int spc) => new(_stacks + spc * StackSlots, _heads[spc].Depth);

    /// <summary>Idle slots on this cache's free stacks (freed objects, dead tiny blocks), per size class (ReadMemStats; world stopped).</summary>
    internal int StackedObjects(int sizeClass) => _heads[sizeClass << 1].Depth + _heads[sizeClass << 1 | 1].Depth;

    /// <summary>Sets up the stack heads (constructor).</summary>
    private static StackHead* NewStackHeads()
    {
        var heads = (StackHead*)NativeMemory.AllocZeroed((nuint)(SizeClasses.NumSpanClasses * sizeof(StackHead)));
        for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
        {
            heads[spc].Limit = StackLimitOf(spc);
            heads[spc].ElemSize = SizeClasses.SizeOf(spc >> 1);
        }
        return heads;
    }
}
