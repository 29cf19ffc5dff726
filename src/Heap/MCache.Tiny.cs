using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The tiny allocator, the owner's side (Go's c.tiny): bump allocation inside the open 16-byte block, opening and
/// closing blocks, the owner's tiny frees and its dead tiny blocks. The block's mask is TinyBlock.cs; frees by other
/// threads and Read/Write bounds are NodeHeap.Tiny.cs. The owner frees a tiny object without a lock, with one
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
    // The tiny block (Go's c.tiny, c.tinyoffset): 0 when there is none.
    private nuint _tiny;
    private nuint _tinyOffset;
    private ulong* _tinyMask;

    internal long TinyFrees;           // tiny objects the owner freed without a lock; the others count in mcentral
    internal long TinyBlockReuses;     // new tiny blocks opened on an idle slot of the stack (not a new slot)

    /// <summary>Go's tiny allocator: bump inside the current 16-byte block, aligned by size.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nuint MallocTiny(nuint size)
    {
        nuint off = _tinyOffset;
        if ((size & 7) == 0) off = (off + 7) & ~(nuint)7;
        else if ((size & 3) == 0) off = (off + 3) & ~(nuint)3;
        else if ((size & 1) == 0) off = (off + 1) & ~(nuint)1;
        if (off + size <= TinyBlock.Size && _tiny != 0)
        {
            _tinyOffset = off + size;
            *TinyBlock.OwnerHalf(_tinyMask) |= TinyBlock.NewObject(off, size);   // only this mcache writes this half
            TinyAllocs++;
            if (BornMarked) MHeap.MarkBorn(_spans, _arenaStart, _tiny);      // the block: the sweep frees it whole
            return _tiny + off;
        }
        return MallocTinyBlock(size);
    }

    /// <summary>
    /// Opens a new tiny block, on an idle slot of the tiny span class's free stack if there is one (a block that died
    /// in this cache's hands, or a freed 16-byte object; MCache.Tiny.cs), else on the next free slot; keeps
    /// whichever of the old and the new block has more room (as Go does). The block that is not kept is closed; if
    /// nothing in it is live it dies onto that stack.
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining | MethodImplOptions.AggressiveOptimization)]
    private nuint MallocTinyBlock(nuint size)
    {
        const int spc = TinyBlock.SpanClass;
        MSpan* s;
        nuint v = TakeIdleTinyClassSlot();
        if (v != 0)
        {
            s = MHeap.SpanOf(_spans, _arenaStart, v);
            Zero.Small(v, TinyBlock.Size);
        }
        else
        {
            s = _alloc[spc];
            v = NextFreeFast(s);
            if (v == 0)
            {
                v = NextFree(spc);
                if (v == 0) return 0;                        // out of memory under TryMalloc
                s = _alloc[spc];
            }
            if (s->NeedZero != 0) Zero.Small(v, TinyBlock.Size);
            SlotAllocs[SizeClasses.TinySizeClass]++;
        }
        _bitmap.Set(v, HeapBitmap.TinyBlockStart);
        if (BornMarked) MHeap.MarkBorn(_spans, _arenaStart, v);
        ulong* mask = &s->TinyMasks[(int)((v - s->StartAddr) >> 4)];
        TinyBlocks++;
        TinyAllocs++;
        bool keepNew = size < _tinyOffset || _tiny == 0;
        // A new block's mask is written plainly: nobody knows the block yet, and its tombstones have IsTiny clear.
        *TinyBlock.OwnerHalf(mask) = TinyBlock.NewObject(0, size);
        Volatile.Write(ref *TinyBlock.SharedHalf(mask), TinyBlock.NewShared(open: keepNew, (uint)TinyBlocks));
        if (keepNew)
        {
            CloseTinyBlock();
            _tiny = v;
            _tinyOffset = size;
            _tinyMask = mask;
        }
        return v;
    }

    /// <summary>
    /// Stops bumping into the current tiny block. A full block is closed already (TinyBlock.IsClosed) and is only
    /// forgotten: the free of its last live object kills it, and it may be dead and its slot reused by now. Any other
    /// is closed with a compare-and-swap; if nothing in it is live, it dies onto the tiny class's free stack.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void CloseTinyBlock()
    {
        if (_tiny == 0) return;
        nuint block = _tiny;
        ulong* mask = _tinyMask;
        bool full = _tinyOffset == TinyBlock.Size;
        _tiny = 0;
        _tinyOffset = 0;
        _tinyMask = null;
        if (!full && TinyBlock.Close(mask) == TinyUpdate.Died) DisposeDeadBlock(block);
    }

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

    /// <summary>The tiny block this cache may still bump into (not full) and its bump offset, or (0, 0) (verifier).</summary>
    internal (nuint Block, int Offset) OpenTinyBlock =>
        _tiny != 0 && _tinyOffset < TinyBlock.Size ? (_tiny, (int)_tinyOffset) : (0, 0);
}
