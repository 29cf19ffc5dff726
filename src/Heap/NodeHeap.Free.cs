using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

// Free: the path under the mcentral lock for frees that do not reach an owner's free stack (MCache.FreeStack.cs).
// Tiny objects: NodeHeap.Tiny.cs; the liveness test Free shares with Read and Write: NodeHeap.Access.cs. See NodeHeap.cs for the path.
public sealed unsafe partial class NodeHeap
{
    /// <summary>Frees the object starting at <paramref name="address"/>; throws <see cref="InvalidPointerException"/> otherwise.</summary>
    public void Free(nuint address)
    {
        PointerError e = TryFree(address);
        if (e != PointerError.None) HeapThrow.InvalidPointer(e, address);
    }

    /// <summary>
    /// Frees the object starting at <paramref name="address"/>. Returns why not (and changes nothing) when the
    /// address is not the start of a live object of this heap.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public PointerError TryFree(nuint address)
    {
        if (address - _arenaStart >= _arenaSize)
        {
            return address == (nuint)_zeroBase ? PointerError.None : PointerError.OutsideArena;
        }
        if (address >= _mheap.ArenaUsed) return PointerError.NotInUse;
        while (true)
        {
            MSpan* s = _mheap.SpanOf(address);
            if (s == null || s->State != SpanState.InUse) return PointerError.NotInUse;
            byte spc = s->SpanClass;
            if (spc < 2) return FreeLarge(s, address, spc);
            MCentral central = _centrals[spc];
            // No try/finally around the lock: nothing below throws, and a finally would spill the hot locals.
            central.Lock();
            // SAFETY: s was read without a lock; it is ours only if it still is this class's in-use span here.
            if (!StillOwns(s, address, spc))
            {
                central.Unlock();
                continue;
            }
            int index = s->ObjectIndex(address);
            nuint slot = s->StartAddr + (nuint)index * (nuint)s->ElemSize;
            PointerError e = PointerError.None;
            if (address == slot && index < s->NElems && s->TinyMasks == null && s->IsAllocated(index) && !s->IsFreedWhileCached(index)
                && _bitmap.TryClaim(address))
            {
                // The common case: a live object of a plain small span. The claim also beats (or loses to) an owner's
                // lock-free free of the same object (MCache.TryFree).
                FreeClaimedLocked(central, s, index, address);
            }
            else
            {
                e = FreeSmallSlowLocked(central, s, address, index, slot);
            }
            central.Unlock();
            return e;
        }
    }

    private PointerError FreeLarge(MSpan* s, nuint address, byte spc)
    {
        using (_mheap.LockLarge())
        {
            if (StillOwns(s, address, spc))
            {
                if (address != s->StartAddr) return PointerError.Interior;
                if (!_bitmap.TryClaim(address)) return PointerError.AlreadyFreed;   // a racing free claimed it and finishes it
                FreeClaimedLargeLocked(s);
                return PointerError.None;
            }
        }
        // The span changed under us: look again, without the mheap lock (lock order is mcentral → mheap).
        return TryFree(address);
    }

    private void FreeClaimedLargeLocked(MSpan* s)
    {
        if (_poisonOnFree) new Span<byte>((void*)s->StartAddr, (int)Math.Min(s->Bytes, int.MaxValue)).Fill(PoisonByte);
        _mheap.AddHeapLive(-(long)s->Bytes);
        _mheap.FreeLargeLocked(s);
    }

    /// <summary>
    /// Finishes a free whose claim (HeapBitmap.TryClaimObject) the caller won, for an object MCache.TryFree does not
    /// stack: a large object, an 8-byte noscan object (a lessee's class), or any object freed through a released
    /// cache. The claimed slot keeps its span stable.
    /// </summary>
    internal PointerError FreeClaimed(MSpan* s, nuint address)
    {
        if (s->IsLarge)
        {
            using (_mheap.LockLarge()) FreeClaimedLargeLocked(s);
            return PointerError.None;
        }
        MCentral central = _centrals[s->SpanClass];
        central.Lock();
        int index = s->ObjectIndex(address);
        FreeClaimedLocked(central, s, index, address);
        central.Unlock();
        return PointerError.None;
    }

    /// <summary>Frees slot <paramref name="index"/>, whose object the caller claimed. Caller holds the mcentral lock.</summary>
    private void FreeClaimedLocked(MCentral central, MSpan* s, int index, nuint address)
    {
        // A plain 16-byte object in the tiny span class: drop tombstones left by tiny objects this slot held
        // before, so a second free of it says AlreadyFreed rather than TinyAlreadyFreed.
        if (s->TinyMasks != null) s->TinyMasks[index] = 0;
        _bitmap.ClearClaimed(address, (nuint)s->ElemSize, s->Noscan);
        central.ObjectFrees++;
        central.FreeSlotLocked(s, index, _poisonOnFree);
    }

    private static bool StillOwns(MSpan* s, nuint address, byte spc) =>
        s->State == SpanState.InUse && s->SpanClass == spc && address >= s->StartAddr && address < s->EndAddr;

    /// <summary>Free's slow cases: tiny objects, and every invalid pointer (which leaves the span untouched).</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private PointerError FreeSmallSlowLocked(MCentral central, MSpan* s, nuint address, int index, nuint slot)
    {
        if (index >= s->NElems) return PointerError.NotInUse;                 // the span's tail waste
        bool live = IsLive(s, index, slot, s->TinyMasks);
        if (s->TinyMasks != null)
        {
            ulong* mask = &s->TinyMasks[index];
            int off = (int)(address - slot);
            if (live && (*mask & TinyBlock.IsTiny) != 0) return FreeTinyLocked(central, s, index, mask, off);
            if (!live && (*mask & TinyBlock.FreedBit(off)) != 0) return PointerError.TinyAlreadyFreed;
        }
        if (address != slot) return PointerError.Interior;
        // TryClaimObject: a slot whose nibble still says "tiny block" is never freed as a plain object.
        if (!live || !_bitmap.TryClaimObject(slot)) return DeadSlotError(s, index, slot);
        FreeClaimedLocked(central, s, index, slot);
        return PointerError.None;
    }
}
