using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>What an address names in the heap: an object's start, size (its slot or span) and class.</summary>
public readonly record struct HeapObject(nuint Base, long Size, int SizeClass, bool Noscan, bool Tiny);

// Free, and the validation shared by Free, Read and Write. See NodeHeap.cs for the path.
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

    private PointerError CheckArena(nuint address)
    {
        if (address < _mheap.ArenaStart || address >= _mheap.ArenaEnd) return PointerError.OutsideArena;
        if (address >= _mheap.ArenaUsed) return PointerError.NotInUse;
        return PointerError.None;
    }

    /// <summary>The live object that starts at <paramref name="address"/>.</summary>
    public PointerError TryFindObject(nuint address, out HeapObject obj)
    {
        PointerError e = Locate(address, out obj);
        if (e == PointerError.None && obj.Base != address) e = PointerError.Interior;
        return e;
    }

    /// <summary>
    /// Checks that [address, address + length) lies inside one live object (address may be interior).
    /// Bounds are the object's slot (its size class), or for tiny objects the object itself (its end bit in
    /// the block mask), or for large objects the span.
    /// </summary>
    public PointerError CheckRange(nuint address, long length, out HeapObject obj)
    {
        obj = default;
        if (length < 0 || (ulong)address + (ulong)length < (ulong)address) return PointerError.BadLength;
        PointerError e = Locate(address, out obj);
        if (e != PointerError.None) return e;
        if ((long)(address - obj.Base) + length > obj.Size) return PointerError.OutOfBounds;
        return PointerError.None;
    }

    /// <summary>Copies bytes out of a live object; throws <see cref="InvalidPointerException"/> for a bad range.</summary>
    public void Read(nuint address, Span<byte> destination)
    {
        PointerError e = TryRead(address, destination);
        if (e != PointerError.None) HeapThrow.InvalidPointer(e, address);
    }

    /// <summary>Copies bytes out of a live object, or returns why not (and copies nothing).</summary>
    public PointerError TryRead(nuint address, Span<byte> destination)
    {
        PointerError e = CheckRange(address, destination.Length, out _);
        if (e == PointerError.None) new ReadOnlySpan<byte>((void*)address, destination.Length).CopyTo(destination);
        return e;
    }

    /// <summary>Copies bytes into a live object; throws <see cref="InvalidPointerException"/> for a bad range.</summary>
    public void Write(nuint address, ReadOnlySpan<byte> source)
    {
        PointerError e = TryWrite(address, source);
        if (e != PointerError.None) HeapThrow.InvalidPointer(e, address);
    }

    /// <summary>Copies bytes into a live object, or returns why not (and writes nothing).</summary>
    public PointerError TryWrite(nuint address, ReadOnlySpan<byte> source)
    {
        PointerError e = CheckRange(address, source.Length, out _);
        if (e != PointerError.None) return e;
        if (_marking) WriteWithBarrier(address, source);                   // the write barrier: GcBarrier.cs
        else source.CopyTo(new Span<byte>((void*)address, source.Length));
        return e;
    }

    /// <summary>
    /// Finds the live object containing <paramref name="address"/> without taking locks: Read and Write race with
    /// a concurrent free of the same object only as C's memcpy would; the pages stay mapped whatever happens.
    /// </summary>
    private PointerError Locate(nuint address, out HeapObject obj)
    {
        obj = default;
        PointerError e = CheckArena(address);
        if (e != PointerError.None) return e;
        MSpan* s = _mheap.SpanOf(address);
        if (s == null || s->State != SpanState.InUse) return PointerError.NotInUse;
        if (s->IsLarge)
        {
            if (s->AllocCount == 0) return PointerError.NotInUse;
            obj = new HeapObject(s->StartAddr, (long)s->Bytes, 0, s->Noscan, false);
            return PointerError.None;
        }
        // SAFETY: read without a lock; a racing free may be changing the span. Every value is range-checked
        // before use, and the pages, span structs and masks stay mapped whatever happens.
        if (address < s->StartAddr) return PointerError.NotInUse;
        int index = s->ObjectIndex(address);
        if ((uint)index >= (uint)s->NElems || index >= MSpan.MaxObjects) return PointerError.NotInUse;
        nuint slot = s->StartAddr + (nuint)index * (nuint)s->ElemSize;
        ulong* masks = s->TinyMasks;          // once: a span going back to mheap drops its masks
        bool live = IsLive(s, index, slot, masks);
        if (masks != null)
        {
            ulong m = masks[index];
            int off = (int)(address - slot);
            if (live && (m & TinyBlock.IsTiny) != 0 && off < TinyBlock.Size)
            {
                uint starts = TinyBlock.Live(m) & ((2u << off) - 1);                // live starts at or before off
                if (starts == 0) return PointerError.TinyNotLive;
                int start = 31 - System.Numerics.BitOperations.LeadingZeroCount(starts);
                int end = TinyBlock.EndOf(m, start);
                if (off >= end) return PointerError.TinyNotLive;                  // padding or a freed neighbour
                obj = new HeapObject(slot + (nuint)start, end - start, SizeClasses.TinySizeClass, true, true);
                return PointerError.None;
            }
        }
        if (!live) return DeadSlotError(s, index, slot);
        obj = new HeapObject(slot, s->ElemSize, s->SizeClass, s->Noscan, false);
        return PointerError.None;
    }

    /// <summary>
    /// A slot holds a live object: allocated, not freed while its span was cached, and with its boundary bit (an
    /// object on an mcache's free stack keeps its slot allocated but has the freed mark instead), and not a dying
    /// tiny block.
    /// </summary>
    internal bool IsLive(MSpan* s, int index, nuint slot, ulong* masks)
    {
        if (!s->IsAllocated(index) || s->IsFreedWhileCached(index)) return false;
        byte nibble = _bitmap.Get(slot);
        if ((nibble & HeapBitmap.Boundary) == 0) return false;
        // A tiny block whose mask has lost IsTiny is dying: its killer is about to mark it freed (TinyBlock.cs).
        return nibble != HeapBitmap.TinyBlockStart || (masks != null && (masks[index] & TinyBlock.IsTiny) != 0);
    }

    /// <summary>Why a slot with no live object cannot be freed or read: freed already, or never allocated.</summary>
    private PointerError DeadSlotError(MSpan* s, int index, nuint slot) =>
        s->IsFreedWhileCached(index) || (_bitmap.Get(slot) & HeapBitmap.Freed) != 0
            ? PointerError.AlreadyFreed
            : PointerError.NeverAllocated;
}
