namespace ClusterHeap.Heap;

/// <summary>
/// mheap's part of the sweep (GcSweep.cs): large spans. Every in-use large span is on one of two lists under the
/// mheap lock, swept (<c>LargeList(0)</c>) or waiting (<c>LargeList(1)</c>); a large object the last mark did not
/// reach gives its span back to mheap when swept, as Go's sweep does.
/// </summary>
internal sealed unsafe partial class MHeap
{
    private long _largeGcFrees;   // large objects the sweep reclaimed; guarded by _lock

    public long LargeGcFreesLocked()
    {
        lock (_lock) return _largeGcFrees;
    }

    /// <summary>Mark termination, the world stopped: every in-use large span becomes unswept.</summary>
    public void BeginLargeSweep()
    {
        lock (_lock)
        {
            MSpan* swept = LargeList(0), unswept = LargeList(1);
            while (!SpanList.IsEmpty(swept))
            {
                MSpan* s = swept->Next;
                SpanList.Remove(s);
                SpanList.InsertBack(unswept, s);
            }
        }
    }

    /// <summary>An aborted mark: every large span's mark is dropped.</summary>
    public void ClearLargeMarks()
    {
        lock (_lock)
        {
            for (int list = 0; list < 2; list++)
            {
                for (MSpan* s = LargeList(list)->Next; s != LargeList(list); s = s->Next) s->ClearMarks();
            }
        }
    }

    /// <summary>
    /// Sets the mark bit of the object just allocated at <paramref name="v"/> (born marked, while a concurrent mark runs:
    /// GcConcurrent.cs). Atomic: the marker and other allocating owners set bits of the same word.
    /// </summary>
    [System.Runtime.CompilerServices.MethodImpl(System.Runtime.CompilerServices.MethodImplOptions.NoInlining)]
    public static void MarkBorn(MSpan** spans, nuint arenaStart, nuint v)
    {
        MSpan* s = SpanOf(spans, arenaStart, v);
        int index = s->IsLarge ? 0 : s->ObjectIndex(v);
        ulong bit = 1UL << index;
        ref ulong word = ref s->MarkBits[index >> 6];
        if ((Volatile.Read(ref word) & bit) == 0) Interlocked.Or(ref word, bit);
    }

    /// <summary>True when large spans wait to be swept (a hint, read without the lock).</summary>
    public bool HasUnsweptLarge => LargeList(1)->Next != LargeList(1);

    /// <summary>Sweeps one waiting large span: the pages it gave back (0 when its object was reached), or -1 when none waits.</summary>
    public long SweepLargeOne(bool poison)
    {
        lock (_lock)
        {
            MSpan* unswept = LargeList(1);
            if (SpanList.IsEmpty(unswept)) return -1;
            MSpan* s = unswept->Next;
            nuint pages = s->NPages;
            bool marked = (s->MarkBits[0] & 1) != 0;
            s->ClearMarks();
            s->SweepGen = _sweepGen;
            SpanList.Remove(s);
            SpanList.InsertBack(LargeList(0), s);
            // A racing explicit free that claimed the object first finishes it under this lock after us.
            if (marked || !Bitmap.TryClaimObject(s->StartAddr)) return 0;
            if (poison) new Span<byte>((void*)s->StartAddr, (int)Math.Min(s->Bytes, int.MaxValue)).Fill(NodeHeap.PoisonByte);
            _largeGcFrees++;
            FreeSpanLocked(s, large: true);
            return (long)pages;
        }
    }
}
