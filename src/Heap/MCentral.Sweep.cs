using System.Numerics;

namespace ClusterHeap.Heap;

/// <summary>
/// mcentral's part of the sweep (the whole sweep is described in GcSweep.cs): at the end of a mark every uncached
/// span of the class moves to the unswept list; a span is swept under this mcentral's lock, by a refill that finds no
/// partial span (Go's mcentral.cacheSpan sweeps before it hands a span out), by the background sweeper, by a reclaim
/// before the heap grows, or by the next collection before it marks.
/// </summary>
internal sealed unsafe partial class MCentral
{
    /// <summary>
    /// Mark termination, the world stopped and every mcache flushed: every uncached span becomes unswept; a leased
    /// span cannot be swept (its unissued slots look like unreachable objects), so its marks are dropped and it counts
    /// as swept. <paramref name="sweepGen"/> is the heap's new sweepgen.
    /// </summary>
    public void BeginSweep(uint sweepGen)
    {
        using (Enter())
        {
            if (CachedSpans == 0)
            {
                // Nothing cached: both lists move whole, without touching a span (what Go's sweepgen-indexed span sets buy).
                SpliceBack(Unswept, Partial);
                SpliceBack(Unswept, Full);
                return;
            }
            for (int list = 0; list < 2; list++)
            {
                MSpan* head = &_lists[list];
                MSpan* s = head->Next;
                while (s != head)
                {
                    MSpan* next = s->Next;
                    if (s->Cache == SpanCache.None)
                    {
                        SpanList.Remove(s);
                        SpanList.InsertBack(Unswept, s);
                    }
                    else
                    {
                        s->ClearMarks();
                        s->SweepGen = sweepGen;
                    }
                    s = next;
                }
            }
        }
    }

    /// <summary>Spans an mcache or a lease holds (Cache != None), on the partial or full list; guarded by the lock.</summary>
    internal int CachedSpans;

    /// <summary>Moves every span of list <paramref name="from"/> to the back of list <paramref name="to"/>, in O(1).</summary>
    private static void SpliceBack(MSpan* to, MSpan* from)
    {
        if (SpanList.IsEmpty(from)) return;
        MSpan* first = from->Next, last = from->Prev, tail = to->Prev;
        tail->Next = first;
        first->Prev = tail;
        last->Next = to;
        to->Prev = last;
        SpanList.Init(from);
    }

    /// <summary>An aborted mark: every span's marks are dropped (all are swept: a mark starts after the sweep finished).</summary>
    public void ClearMarks()
    {
        using (Enter())
        {
            for (int list = 0; list < 3; list++)
            {
                for (MSpan* s = _lists[list].Next; s != &_lists[list]; s = s->Next) s->ClearMarks();
            }
        }
    }

    /// <summary>True when spans of this class wait to be swept (a hint, read without the lock).</summary>
    public bool HasUnswept => Unswept->Next != Unswept;

    /// <summary>Sweeps one unswept span, if any; returns the pages it gave back to mheap (0 or its pages), or -1 when none was left.</summary>
    public long SweepOne(bool poison)
    {
        using (Enter())
        {
            if (SpanList.IsEmpty(Unswept)) return -1;
            MSpan* s = Unswept->Next;
            nuint pages = s->NPages;
            return SweepLocked(s, poison) ? (long)pages : 0;
        }
    }

    /// <summary>Poison freed objects when sweeping from a refill (set by the node heap, from its options).</summary>
    internal bool PoisonOnSweep;

    /// <summary>
    /// A refill found no partial span: sweeps unswept spans until one has a free slot and returns it (on the partial
    /// list), or null when none does. Caller holds the lock.
    /// </summary>
    private MSpan* SweepForCacheLocked()
    {
        while (!SpanList.IsEmpty(Unswept))
        {
            MSpan* s = Unswept->Next;
            if (!SweepLocked(s, PoisonOnSweep) && s->AllocCount < s->NElems) return s;
        }
        return null;
    }

    /// <summary>
    /// Go's mspan.sweep: frees every live object of <paramref name="s"/> that the last mark did not reach, clears the
    /// marks, makes the span swept and files it (partial, full, or back to mheap when nothing is left: true). A slot
    /// that is allocated but holds no live object — on an mcache's free stack, or claimed by a free racing with this
    /// sweep, or a tiny block its killer is freeing — is left to its holder. Caller holds the lock.
    /// </summary>
    private bool SweepLocked(MSpan* s, bool poison)
    {
        HeapBitmap bitmap = _heap.Bitmap;
        nuint elem = (nuint)s->ElemSize;
        int freed = 0;
        for (int w = 0; w < MSpan.BitWords; w++)
        {
            ulong dead = s->AllocBits[w] & ~s->MarkBits[w];
            while (dead != 0)
            {
                int i = (w << 6) + BitOperations.TrailingZeroCount(dead);
                dead &= dead - 1;
                nuint slot = s->StartAddr + (nuint)i * elem;
                if (s->TinyMasks != null && bitmap.Get(slot) == HeapBitmap.TinyBlockStart)
                {
                    int objects = TinyBlock.Kill(&s->TinyMasks[i]);
                    if (objects < 0) continue;                  // dying already: its killer frees the slot
                    bitmap.Set(slot, HeapBitmap.Freed);
                    ObjectFrees += objects;
                    GcFrees += objects;
                }
                else
                {
                    if (!bitmap.TryClaimObject(slot)) continue; // idle on a free stack, or a racing free's
                    if (s->TinyMasks != null) s->TinyMasks[i] = 0;
                    bitmap.ClearClaimed(slot, elem, s->Noscan);
                    ObjectFrees++;
                    GcFrees++;
                }
                if (poison) new Span<byte>((void*)slot, (int)elem).Fill(NodeHeap.PoisonByte);
                s->AllocBits[w] &= ~(1UL << i);
                s->AllocCount--;
                SlotFrees++;
                freed++;
            }
        }
        if (freed != 0) s->NeedZero = 1;
        s->ClearMarks();
        s->SweepGen = _heap.SweepGen;
        bool empty = s->AllocCount == 0;
        PlaceUncachedLocked(s);
        return empty;
    }
}
