using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

// The tiny objects' frees by anyone but their block's owner, and their bounds for Read and Write. The tiny
// allocator is TinyBlock.cs (the block's mask), MCache.Tiny.cs (the owner: bump, close, lock-free free, dead
// blocks) and this file.
public sealed unsafe partial class NodeHeap
{
    /// <summary>Frees one tiny object; the block's slot goes too when it was the last live one and the block is closed.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private PointerError FreeTinyLocked(MCentral central, MSpan* s, int index, ulong* mask, int off)
    {
        switch (TinyBlock.Free(mask, off))
        {
            case TinyUpdate.NotLive: return PointerError.TinyNotLive;
            case TinyUpdate.AlreadyFreed: return PointerError.TinyAlreadyFreed;
            case TinyUpdate.Died:
                // Last live object of a closed block: the block's slot goes; starts and freed bits stay as tombstones.
                central.ObjectFrees++;
                FreeDeadTinyBlockLocked(central, s, index);
                return PointerError.None;
            case TinyUpdate.NotTiny:
                // It died between the caller's look and ours (its owner's lock-free free): its objects are all freed.
                return (*mask & TinyBlock.FreedBit(off)) != 0 ? PointerError.TinyAlreadyFreed : PointerError.TinyNotLive;
            default:
                central.ObjectFrees++;
                return PointerError.None;
        }
    }

    /// <summary>
    /// A tiny block died by another thread's free (TinyUpdate.Died: closed with nothing live; IsTiny already cleared):
    /// free its slot. Caller holds the tiny class's mcentral lock.
    /// </summary>
    internal void FreeDeadTinyBlock(MSpan* s, int index)
    {
        MCentral central = _centrals[s->SpanClass];
        using (central.Enter()) FreeDeadTinyBlockLocked(central, s, index);
    }

    private void FreeDeadTinyBlockLocked(MCentral central, MSpan* s, int index)
    {
        _bitmap.MarkFreed(s->StartAddr + (nuint)index * TinyBlock.Size, TinyBlock.Size, noscan: true);
        central.FreeSlotLocked(s, index, _poisonOnFree);
    }

    /// <summary>The live tiny object covering byte <paramref name="off"/> of the live block at <paramref name="slot"/> (mask <paramref name="m"/>, read once).</summary>
    private static PointerError LocateTiny(ulong m, nuint slot, int off, out HeapObject obj)
    {
        obj = default;
        uint starts = TinyBlock.Live(m) & ((2u << off) - 1);                // live starts at or before off
        if (starts == 0) return PointerError.TinyNotLive;
        int start = 31 - System.Numerics.BitOperations.LeadingZeroCount(starts);
        int end = TinyBlock.EndOf(m, start);
        if (off >= end) return PointerError.TinyNotLive;                  // padding or a freed neighbour
        obj = new HeapObject(slot + (nuint)start, end - start, SizeClasses.TinySizeClass, true, true);
        return PointerError.None;
    }
}
