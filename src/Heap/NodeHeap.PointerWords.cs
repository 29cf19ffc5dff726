namespace ClusterHeap.Heap;

// What the cluster collector needs from a node heap beyond a mark session (src/Grains/Gc, docs/DESIGN.md §12):
// heap_live for its pacer's trigger, and the kind of one word so a client can only store a pointer where the
// bitmap says a pointer lives (the marker reads pointer words only; a pointer in a scalar word keeps nothing alive).
public sealed unsafe partial class NodeHeap
{
    /// <summary>Go's heap_live: bytes in objects allocated since the last mark plus what it marked (read without a lock).</summary>
    public long HeapLive => _mheap.HeapLive;

    /// <summary>
    /// The bitmap's kind of the word at <paramref name="address"/>, which must be 8-byte aligned and lie inside a live
    /// object (checked as a read of 8 bytes is). <see cref="WordKind.Dead"/> (no pointers from here to the object's end)
    /// is a scalar word for the caller's purpose.
    /// </summary>
    public PointerError TryGetWordKind(nuint address, out WordKind kind)
    {
        kind = WordKind.Dead;
        PointerError e = CheckRange(address, sizeof(ulong), out HeapObject obj);
        if (e != PointerError.None) return e;
        if ((address & (sizeof(ulong) - 1)) != 0) return PointerError.BadLength;
        kind = obj.Noscan ? WordKind.Scalar : HeapBitmap.KindOf(_mheap.Bitmap.Get(address));
        return PointerError.None;
    }
}
