using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;

namespace ClusterHeap.Heap;

/// <summary>What one mark found (the collector is described in NodeHeap.Gc.cs).</summary>
public readonly record struct MarkCounts(
    long Objects, long Bytes, long ScannedObjects, long Interior, long Dangling, long Foreign);

/// <summary>
/// The mark phase (Go's gcDrain over greyobject/scanobject): shades the words it is given and scans the objects it
/// marks, word by word, reading each word's kind in the heap bitmap. A word is only a candidate pointer: it leads
/// somewhere only if it names a live object of this heap (<see cref="NodeHeap.IsLive"/>, the check every free makes),
/// possibly inside it — an interior pointer keeps its object alive, as in Go. Anything else — a freed or never
/// allocated slot, free pages, a tiny block's padding, a pointer of another generation of this slot — is counted as
/// dangling and never followed. A word outside this arena is foreign: handed to <see cref="ForeignSink"/> (the
/// cluster's marks for other nodes) or counted. Noscan objects are marked and never scanned; a tiny object marks its
/// whole 16-byte block (Go does the same).
/// <para>
/// Marks go into the spans' MarkBits (MSpan.cs), never into the heap bitmap, whose freed bit stays the explicit
/// free's claim. Grey objects wait on a native stack of (base, bytes to scan).
/// </para>
/// Concurrency model: one thread marks at a time (the collecting thread with the world stopped, or, in a concurrent
/// cycle, whoever holds the heap's mark lock: the mark worker, an assisting mutator, a session step). With
/// <see cref="Concurrent"/> set, mutators run meanwhile: they set mark bits of objects they allocate (born marked), so
/// the marker sets its bits atomically too, and the arena may grow (<see cref="Drain"/> rereads its end). A word read
/// while a mutator writes it may be torn or stale: the marker trusts no word anyway, and the write barrier shades
/// both the old and the new value (GcBarrier.cs).
/// </summary>
internal sealed unsafe class GcMarker : IDisposable
{
    private const ulong AddressMask = (1UL << 48) - 1;
    private const int PrefetchRing = 8;          // grey objects prefetched ahead of the scan (a power of 2)

    private readonly NodeHeap _heap;
    private readonly MHeap _mheap;
    private readonly HeapBitmap _bitmap;
    private readonly nuint _arenaStart;
    private readonly nuint _arenaSize;
    private readonly MSpan** _spans;
    private nuint _used;           // ArenaUsed, read at Reset: the arena does not grow while the world is stopped
    private nuint* _grey;          // pairs: object base, bytes to scan
    private int _depth;            // pairs on _grey
    private int _capacity;         // pairs _grey holds
    private long _objects, _bytes, _scannedObjects, _interior, _dangling, _foreign;

    public GcMarker(NodeHeap heap, MHeap mheap)
    {
        _heap = heap;
        _mheap = mheap;
        _bitmap = mheap.Bitmap;
        _arenaStart = mheap.ArenaStart;
        _arenaSize = (nuint)mheap.ArenaSize;
        _spans = (MSpan**)heap.Layout.SpansStart;
        _capacity = 1024;
        _grey = (nuint*)NativeMemory.Alloc((nuint)_capacity * 2 * (nuint)sizeof(nuint));
    }

    /// <summary>The generation local client pointers carry in their top 16 bits; 0 accepts raw addresses only.</summary>
    public ushort Generation { get; set; }

    /// <summary>Receives words that point outside this arena (other nodes' objects); null counts them only.</summary>
    public Action<ulong>? ForeignSink { get; set; }

    public MarkCounts Counts => new(_objects, _bytes, _scannedObjects, _interior, _dangling, _foreign);

    /// <summary>Mutators run while this mark does (a concurrent cycle): mark bits are set atomically.</summary>
    public bool Concurrent { get; set; }

    /// <summary>True when grey objects wait to be scanned.</summary>
    public bool HasGrey => _depth > 0;

    /// <summary>Starts a mark: counters to zero. The spans' mark bits are empty (every span is swept).</summary>
    public void Reset()
    {
        _depth = 0;
        _used = _mheap.ArenaUsed;
        _objects = _bytes = _scannedObjects = _interior = _dangling = _foreign = 0;
    }

    /// <summary>
    /// Go's greyobject for one word: marks the live object it points into, if any, and queues it for scanning unless
    /// it is noscan or marked already.
    /// </summary>
    public void Shade(ulong word)
    {
        if (word == 0) return;
        nuint p = (nuint)(word & AddressMask);
        ushort tag = (ushort)(word >> 48);
        if (p - _arenaStart >= _used - _arenaStart || (tag != 0 && tag != Generation))
        {
            ShadeOutside(word, p);
            return;
        }
        MSpan* s = MHeap.SpanOf(_spans, _arenaStart, p);
        if (s == null || s->State != SpanState.InUse || p < s->StartAddr)
        {
            _dangling++;
            return;
        }
        nuint obj;
        int index;
        nuint scan;
        if (s->IsLarge)
        {
            if (s->AllocCount == 0 || (_bitmap.Get(s->StartAddr) & HeapBitmap.Boundary) == 0)
            {
                _dangling++;
                return;
            }
            obj = s->StartAddr;
            index = 0;
            scan = s->Bytes;
        }
        else
        {
            index = s->ObjectIndex(p);
            if (index >= s->NElems)
            {
                _dangling++;             // the span's tail waste
                return;
            }
            obj = s->StartAddr + (nuint)index * (nuint)s->ElemSize;
            // NodeHeap.IsLive, inlined: allocated, not freed while cached, boundary in its nibble; in the tiny class, a
            // live block (IsTiny) with a live object where the word points, or a plain 16-byte object.
            ulong bit = 1UL << index;
            byte nibble = _bitmap.Get(obj);
            if ((s->AllocBits[index >> 6] & bit) == 0 || (s->FreedBits[index >> 6] & bit) != 0 || (nibble & HeapBitmap.Boundary) == 0
                || (s->TinyMasks != null && !TinySlotLiveAt(s->TinyMasks[index], nibble, (int)(p - obj))))
            {
                _dangling++;
                return;
            }
            scan = (nuint)s->ElemSize;
        }
        if (p != obj) _interior++;
        if (!(Concurrent ? TryMarkAtomic(s, index) : s->TryMark(index))) return;
        _objects++;
        _bytes += (long)scan;
        if (s->Noscan) return;
        if (_depth == _capacity) Grow();
        _grey[2 * _depth] = obj;
        _grey[2 * _depth + 1] = scan;
        _depth++;
    }

    /// <summary>Sets a mark bit racing with mutators that set others of the same word (born-marked objects).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static bool TryMarkAtomic(MSpan* s, int index)
    {
        ulong bit = 1UL << index;
        ref ulong word = ref s->MarkBits[index >> 6];
        return (Volatile.Read(ref word) & bit) == 0 && (Interlocked.Or(ref word, bit) & bit) == 0;
    }

    /// <summary>A word outside the mapped arena or of another generation: foreign (another node's), or dangling.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void ShadeOutside(ulong word, nuint p)
    {
        if (Concurrent && p - _arenaStart < _arenaSize && p < _mheap.ArenaUsed && _used < _mheap.ArenaUsed)
        {
            _used = _mheap.ArenaUsed;        // the arena grew since this mark looked: the word may lead somewhere now
            Shade(word);
            return;
        }
        if (p - _arenaStart >= _arenaSize)
        {
            _foreign++;
            ForeignSink?.Invoke(word);
        }
        else
        {
            _dangling++;                 // unmapped arena, or an older generation of this slot: node gone
        }
    }

    /// <summary>
    /// A slot of the tiny class with its boundary bit: a plain 16-byte object lives; a tiny block lives if IsTiny is set
    /// (else it is dying), and the word must land inside one of its live objects (padding and freed objects do not count).
    /// </summary>
    private static bool TinySlotLiveAt(ulong mask, byte nibble, int offset)
    {
        if (nibble != HeapBitmap.TinyBlockStart) return true;            // a plain 16-byte object
        if ((mask & TinyBlock.IsTiny) == 0) return false;               // dying block
        uint starts = TinyBlock.Live(mask) & ((2u << offset) - 1);
        if (starts == 0) return false;
        int start = 31 - System.Numerics.BitOperations.LeadingZeroCount(starts);
        return offset < TinyBlock.EndOf(mask, start);
    }

    /// <summary>
    /// Go's gcDrain and scanobject: scans grey objects until none is left, shading every word the bitmap says holds a
    /// pointer, up to the object's first Dead word. The common target — a live object of a plain small span — is shaded
    /// here with the heap's geometry in locals; large spans, tiny blocks and every word that leads nowhere take
    /// <see cref="Shade"/>, which applies the same rules. <paramref name="budget"/>: at most this many objects are
    /// scanned; true when no grey object is left.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public bool Drain(long budget = long.MaxValue)
    {
        if (Concurrent) _used = _mheap.ArenaUsed;          // the arena grows under a concurrent mark
        // Kept few so the JIT holds them in registers: the loop is the collector's hot path.
        nuint arenaStart = _arenaStart;
        ulong usedBytes = _used - _arenaStart;
        MSpan** spans = _spans;
        HeapBitmap bitmap = _bitmap;
        bool atomic = Concurrent;
        ulong generation = Generation;                        // a local client pointer's tag (Shade's rule: 0 or this)
        long objects = 0, bytes = 0, scanned = 0;
        int depth = _depth;                                   // the grey stack in locals: stores through pointers below
        nuint* grey = _grey;                                  // would otherwise make the JIT reload the fields
        // Objects go from the stack's top through a small ring before they are scanned, each prefetched as it enters:
        // its cache line arrives while the ones ahead of it are scanned (the mark is bound by memory, not by work).
        nuint* ring = stackalloc nuint[2 * PrefetchRing];
        int head = 0, queued = 0;
        while (scanned < budget)
        {
            while (queued < PrefetchRing && depth > 0)
            {
                depth--;
                nuint o = grey[2 * depth];
                if (Sse.IsSupported) Sse.Prefetch0((void*)o);
                int slot = (head + queued++) & (PrefetchRing - 1);
                ring[2 * slot] = o;
                ring[2 * slot + 1] = grey[2 * depth + 1];
            }
            if (queued == 0) break;
            nuint obj0 = ring[2 * head], end = obj0 + ring[2 * head + 1];
            head = (head + 1) & (PrefetchRing - 1);
            queued--;
            scanned++;
            for (nuint a = obj0; a < end; a += HeapConstants.PtrSize)
            {
                int kind = bitmap.Get(a) >> HeapBitmap.KindShift;
                if (kind != (int)WordKind.Pointer)
                {
                    if (kind == (int)WordKind.Dead && a != obj0) break;          // no pointers from here to the end
                    continue;
                }
                ulong word = *(ulong*)a;
                // An address inside the mapped arena, raw or tagged with this node's generation (a client pointer: the
                // common case in a cluster); 0, other tags and everything outside fail this one test and go to Shade.
                ulong address = word >> 48 == generation ? word & AddressMask : word;
                if (address - arenaStart >= usedBytes)
                {
                    if (word != 0)
                    {
                        depth = ShadeFromDrain(word, depth);
                        grey = _grey;                                            // Shade may have grown the stack
                    }
                    continue;
                }
                nuint p = (nuint)address;
                MSpan* s = MHeap.SpanOf(spans, arenaStart, p);
                if (s == null || s->State != SpanState.InUse || s->SpanClass < 2 || s->TinyMasks != null || p < s->StartAddr)
                {
                    depth = ShadeFromDrain(word, depth);                        // large spans, tiny blocks, free pages
                    grey = _grey;
                    continue;
                }
                int index = s->ObjectIndex(p);
                nuint elem = (nuint)s->ElemSize;
                nuint obj = s->StartAddr + (nuint)index * elem;
                // A live object starts here: the boundary bit in its nibble, which every free clears first (its claim)
                // and every allocation sets last, so it implies the slot's AllocBits bit and no FreedBits bit.
                if (index >= s->NElems || (bitmap.Get(obj) & HeapBitmap.Boundary) == 0)
                {
                    _dangling++;
                    continue;
                }
                if (p != obj) _interior++;
                ulong bit = 1UL << index;
                ref ulong marks = ref s->MarkBits[index >> 6];
                if ((marks & bit) != 0) continue;
                if (atomic)
                {
                    if ((Interlocked.Or(ref marks, bit) & bit) != 0) continue;
                }
                else
                {
                    marks |= bit;
                }
                objects++;
                bytes += (long)elem;
                if (s->Noscan) continue;
                if (depth == _capacity)
                {
                    _depth = depth;
                    Grow();
                    grey = _grey;
                }
                nuint* top = grey + 2 * depth++;
                top[0] = obj;
                top[1] = elem;
            }
        }
        while (queued > 0)                                    // a budget ran out: what waits in the ring goes back
        {
            if (depth == _capacity)
            {
                _depth = depth;
                Grow();
                grey = _grey;
            }
            queued--;
            int slot = (head + queued) & (PrefetchRing - 1);
            grey[2 * depth] = ring[2 * slot];
            grey[2 * depth + 1] = ring[2 * slot + 1];
            depth++;
        }
        _depth = depth;
        _objects += objects;
        _bytes += bytes;
        _scannedObjects += scanned;
        return _depth == 0;
    }

    /// <summary><see cref="Shade"/> from inside <see cref="Drain"/>, whose grey stack depth lives in a local meanwhile.</summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private int ShadeFromDrain(ulong word, int depth)
    {
        _depth = depth;
        Shade(word);
        return _depth;
    }

    private void Grow()
    {
        int capacity = _capacity * 2;
        nuint* grey = (nuint*)NativeMemory.Alloc((nuint)capacity * 2 * (nuint)sizeof(nuint));
        Buffer.MemoryCopy(_grey, grey, (long)capacity * 2 * sizeof(nuint), (long)_depth * 2 * sizeof(nuint));
        NativeMemory.Free(_grey);
        _grey = grey;
        _capacity = capacity;
    }

    public void Dispose()
    {
        NativeMemory.Free(_grey);
        _grey = null;
    }
}
