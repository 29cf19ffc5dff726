using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

// Read, Write and the lookup that validates them (and Free's liveness test). See NodeHeap.cs for the path.
public sealed unsafe partial class NodeHeap
{
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
        ulong mask = masks != null ? masks[index] : 0;   // once: a racing free may change it
        if (live && (mask & TinyBlock.IsTiny) != 0) return LocateTiny(mask, slot, (int)(address - slot), out obj);
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
