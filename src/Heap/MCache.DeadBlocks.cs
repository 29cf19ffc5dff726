using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The owner's tiny frees and its dead tiny blocks. The owner frees a tiny object without a lock, with one
/// compare-and-swap on its block's mask (TinyBlock.cs). When that free, or the owner closing its block, kills the
/// block — closed, nothing live — the owner keeps the block's slot, still allocated and with the freed mark in its
/// nibble, on the free stack of the tiny span class (16-byte noscan, MCache.FreeStack.cs). That stack is shared with
/// the owner's frees of plain 16-byte noscan objects, and both kinds of entry are the same thing: an idle slot of
/// the class, allocated, freed mark in its nibble, IsTiny clear in its mask. So the owner's next new tiny block and
/// its next 16-byte noscan Malloc both pop it, last in, first out: a stream of tiny allocations and frees recycles
/// a few blocks and never touches mcentral. A full stack gives its older half back to mcentral in one lock hold;
/// ReleaseAll closes the tiny block first and then empties the stack. Blocks killed by other threads' frees are
/// freed under the lock instead (NodeHeap.FreeTinyLocked).
/// <para>
/// Counting: a dead block pushed is not a user free (its objects were counted one by one in TinyFrees), so it does
/// not count in the stack's Pushes; a new block opened on a popped slot counts in TinyBlockReuses, not in Pops.
/// </para>
/// </summary>
public sealed unsafe partial class MCache
{
    internal long TinyFrees;           // tiny objects the owner freed without a lock; the others count in mcentral
    internal long TinyBlockReuses;     // new tiny blocks opened on an idle slot of the stack (not a new slot)

    /// <summary>
    /// A tiny object, freed without a lock: true when done; false leaves everything to <see cref="NodeHeap.TryFree"/>,
    /// which also finds the errors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryFreeTiny(nuint address)
    {
        // SAFETY: the span and its masks are read without a lock; TinyBlock.Free's compare-and-swap succeeds only on
        // the mask of a live tiny block in which a live object starts at this offset.
        if (Released) return false;                    // the node heap frees and counts it
        MSpan* s = MHeap.SpanOf(_spans, _arenaStart, address);
        if (s == null || s->SpanClass != TinyBlock.SpanClass || s->State != SpanState.InUse) return false;
        ulong* masks = s->TinyMasks;
        nuint offset = address - s->StartAddr;
        if (masks == null || offset >= (nuint)s->NElems * TinyBlock.Size) return false;
        TinyUpdate u = TinyBlock.Free(&masks[(int)(offset >> 4)], (int)(offset & 15));
        if (u == TinyUpdate.Died)
        {
            // A block of a span unswept since the last mark is freed, not stacked (see MCache.TryFree).
            if (s->SweepGen == _mheap.SweepGen) DisposeDeadBlock(address & ~(nuint)15);
            else _heap.FreeDeadTinyBlock(s, (int)(offset >> 4));
        }
        else if (u != TinyUpdate.Done)
        {
            return false;
        }

        TinyFrees++;
        return true;
    }

    /// <summary>A block this cache killed: its nibble gets the freed mark and its slot goes on the tiny class's stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DisposeDeadBlock(nuint block)
    {
        const int spc = TinyBlock.SpanClass;
        _bitmap.Set(block, HeapBitmap.Freed);     // was TinyBlockStart; only the block's killer writes it (TinyBlock.cs)
        if (_poisonOnFree) new Span<byte>((void*)block, TinyBlock.Size).Fill(NodeHeap.PoisonByte);
        StackHead* head = &_heads[spc];
        Debug.Assert(head->Limit != 0, "ReleaseAll closes the tiny block before it stops the stacks");
        int depth = head->Depth;
        if (depth == head->Limit) depth = Flush(spc, depth, depth / 2);
        _stacks[spc * StackSlots + depth] = block;
        head->Depth = depth + 1;
    }

    /// <summary>An idle slot of the tiny span class for a new tiny block (a dead block or a freed 16-byte object), or 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nuint TakeIdleTinyClassSlot()
    {
        StackHead* head = &_heads[TinyBlock.SpanClass];
        int depth = head->Depth;
        if (depth == 0) return 0;
        head->Depth = --depth;
        TinyBlockReuses++;
        return _stacks[TinyBlock.SpanClass * StackSlots + depth];
    }
}
