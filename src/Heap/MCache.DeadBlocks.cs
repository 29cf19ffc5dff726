using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The owner's tiny frees and the mcache's dead-block stack. The owner frees a tiny object without a lock, with one
/// compare-and-swap on its block's mask (TinyBlock.cs). When that free, or the owner closing its block, kills the
/// block — closed, nothing live — the owner keeps the block's slot, still allocated and with the freed mark in its
/// nibble, on this stack, and its next new tiny block is that slot again, last in, first out: a stream of tiny
/// allocations and frees recycles a few blocks and never touches mcentral. A full stack gives its older half back to
/// the tiny class's mcentral in one lock hold; ReleaseAll gives back everything. Blocks killed by other threads' frees
/// are freed under the lock instead (NodeHeap.FreeTinyLocked).
/// <para>
/// Invariants (the verifier checks them): every address on the stack is an allocated slot of an in-use span of the
/// tiny span class, not freed while cached, whose mask has IsTiny clear and whose nibble is exactly the freed mark;
/// the stack holds at most <see cref="DeadBlockLimit"/> of them (none after ReleaseAll).
/// </para>
/// </summary>
public sealed unsafe partial class MCache
{
    internal const int DeadBlockLimit = 64;

    private readonly nuint* _deadBlocks = (nuint*)NativeMemory.Alloc((nuint)((DeadBlockLimit + 1) * sizeof(nuint)));
    private int _deadBlockCount;
    private int _deadBlockLimit = DeadBlockLimit;      // 0 after ReleaseAll: a block that dies later is freed at once

    internal long TinyFrees;           // tiny objects the owner freed without a lock; the others count in mcentral
    internal long TinyBlockReuses;     // new tiny blocks opened on a dead block's slot (not a new slot)

    /// <summary>Dead blocks waiting on the stack (verifier, ReadMemStats, span listing; world stopped).</summary>
    internal ReadOnlySpan<nuint> DeadBlocks => new(_deadBlocks, _deadBlockCount);

    /// <summary>
    /// A tiny object, freed without a lock: true when done; false leaves everything to <see cref="NodeHeap.TryFree"/>,
    /// which also finds the errors.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private bool TryFreeTiny(nuint address)
    {
        // SAFETY: the span and its masks are read without a lock; TinyBlock.Free's compare-and-swap succeeds only on
        // the mask of a live tiny block in which a live object starts at this offset.
        if (_deadBlockLimit == 0) return false;        // released: the node heap frees and counts it
        MSpan* s = _spans[(address - _arenaStart) >> HeapConstants.PageShift];
        if (s == null || s->SpanClass != TinyBlock.SpanClass || s->State != SpanState.InUse) return false;
        ulong* masks = s->TinyMasks;
        nuint offset = address - s->StartAddr;
        if (masks == null || offset >= (nuint)s->NElems * TinyBlock.Size) return false;
        TinyUpdate u = TinyBlock.Free(&masks[(int)(offset >> 4)], (int)(offset & 15));
        if (u == TinyUpdate.Died) DisposeDeadBlock(address & ~(nuint)15);
        else if (u != TinyUpdate.Done) return false;
        TinyFrees++;
        return true;
    }

    /// <summary>A block this cache killed: its nibble gets the freed mark and its slot goes on the stack.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void DisposeDeadBlock(nuint block)
    {
        _bitmap.Set(block, HeapBitmap.Freed);     // was TinyBlockStart; only the block's killer writes it (TinyBlock.cs)
        if (_poisonOnFree) new Span<byte>((void*)block, TinyBlock.Size).Fill(NodeHeap.PoisonByte);
        _deadBlocks[_deadBlockCount++] = block;
        if (_deadBlockCount > _deadBlockLimit) FlushDeadBlocks(_deadBlockCount - _deadBlockLimit / 2);
    }

    /// <summary>A dead block's slot for a new tiny block, or 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private nuint TakeDeadBlock()
    {
        if (_deadBlockCount == 0) return 0;
        TinyBlockReuses++;
        return _deadBlocks[--_deadBlockCount];
    }

    /// <summary>Frees the <paramref name="count"/> oldest dead blocks' slots under the tiny class's mcentral lock.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void FlushDeadBlocks(int count) =>
        _deadBlockCount = GiveBackOldest(TinyBlock.SpanClass, _deadBlocks, _deadBlockCount, count);

    /// <summary>Empties the stack and stops keeping dead blocks (ReleaseAll, after the tiny block is closed).</summary>
    private void FlushAllDeadBlocks()
    {
        _deadBlockLimit = 0;
        if (_deadBlockCount != 0) FlushDeadBlocks(_deadBlockCount);
    }
}
