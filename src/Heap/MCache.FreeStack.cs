using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

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
/// least 2); tiny blocks and large objects are never stacked. Worst case one mcache holds 32 KiB per span class
/// in its stacks, about what its cached spans hold anyway.
/// </para>
/// Invariants (the verifier checks them): every stacked address is the start of an allocated slot, not freed
/// while cached, in an in-use span of the stack's span class, with exactly the freed mark in its bitmap nibble, and
/// on one stack only; a stack never holds more than its limit. Only the owner touches its stacks; the verifier and
/// ReadMemStats read them with the world stopped.
/// </summary>
public sealed unsafe partial class MCache
{
    /// <summary>Entries per span class in <see cref="_stacks"/>: the largest stack limit.</summary>
    private const int StackSlots = 64;
    private const int StackBytes = 32 << 10;

    private readonly nuint* _stacks;           // [NumSpanClasses × StackSlots]: stack spc is _stacks[spc * StackSlots ..]
    private readonly int* _stackDepth;         // [NumSpanClasses]: objects on each stack; ≤ _stackLimit[spc]
    private readonly int* _stackLimit;         // [NumSpanClasses]: StackLimitOf(spc); all 0 after ReleaseAll

    internal readonly long[] StackPushes = new long[SizeClasses.NumClasses];   // objects freed onto a stack, per class
    internal readonly long[] StackPops = new long[SizeClasses.NumClasses];     // objects allocated from a stack, per class

    /// <summary>Most objects the free stack of span class <paramref name="spc"/> holds; 0: never stacked.</summary>
    internal static int StackLimitOf(int spc) =>
        spc < 2 || spc == TinyBlock.SpanClass ? 0 : Math.Clamp(StackBytes / SizeClasses.SizeOf(spc >> 1), 2, StackSlots);

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
    /// span class; a large one or a 16-byte one of the tiny span class is finished under its lock. A pointer that
    /// cannot be claimed — interior, foreign, freed, never allocated, tiny — takes <see cref="NodeHeap.TryFree"/>,
    /// which frees it under the locks or says why not.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public PointerError TryFree(nuint address)
    {
        nuint arena = _mheap.ArenaStart;
        if (address - arena < _mheap.ArenaUsed - arena && (address & 7) == 0 && _bitmap.TryClaimObject(address))
        {
            MSpan* s = _mheap.SpanOf(address);
            int spc = s->SpanClass;
            if (_stackLimit[spc] == 0) return _heap.FreeClaimed(s, address);
            Push(spc, address, (nuint)s->ElemSize, s->Noscan);
            return PointerError.None;
        }
        return _heap.TryFree(address);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void Push(int spc, nuint address, nuint elem, bool noscan)
    {
        _bitmap.ClearClaimed(address, elem, noscan);
        if (_heap.PoisonOnFree) new Span<byte>((void*)address, (int)elem).Fill(NodeHeap.PoisonByte);
        int depth = _stackDepth[spc];
        if (depth == _stackLimit[spc]) depth = Flush(spc, depth, depth / 2);
        _stacks[spc * StackSlots + depth] = address;
        _stackDepth[spc] = depth + 1;
        StackPushes[spc >> 1]++;
    }

    /// <summary>
    /// Gives the <paramref name="count"/> oldest objects of stack <paramref name="spc"/> back to mcentral in one
    /// lock hold and moves the rest down; returns the new depth.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int Flush(int spc, int depth, int count)
    {
        nuint* stack = _stacks + spc * StackSlots;
        MCentral central = _heap.Central(spc);
        central.Lock();
        for (int i = 0; i < count; i++)
        {
            nuint a = stack[i];
            MSpan* s = _mheap.SpanOf(a);
            int index = (int)((ulong)(uint)(a - s->StartAddr) * s->DivMagic >> 32);
            central.FreeSlotLocked(s, index, poison: false);
        }
        central.Unlock();
        int left = depth - count;
        Buffer.MemoryCopy(stack + count, stack, left * sizeof(nuint), left * sizeof(nuint));
        return left;
    }

    /// <summary>Empties every free stack into mcentral and stops stacking (ReleaseAll).</summary>
    private void FlushStacks()
    {
        for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
        {
            _stackLimit[spc] = 0;
            int depth = _stackDepth[spc];
            if (depth != 0) _stackDepth[spc] = Flush(spc, depth, depth);
        }
    }

    /// <summary>The objects on free stack <paramref name="spc"/> (verifier, span listing; world stopped).</summary>
    internal ReadOnlySpan<nuint> Stacked(int spc) => new(_stacks + spc * StackSlots, _stackDepth[spc]);

    /// <summary>Objects on this cache's free stacks, per size class (ReadMemStats; world stopped).</summary>
    internal int StackedObjects(int sizeClass) => _stackDepth[sizeClass << 1] + _stackDepth[sizeClass << 1 | 1];
}
