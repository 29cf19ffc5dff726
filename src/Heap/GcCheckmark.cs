namespace ClusterHeap.Heap;

/// <summary>A reachable object that a concurrent mark left unmarked: the sweep would have freed it while in use.</summary>
public sealed class CheckmarkException(nuint address, long size, int sizeClass, MarkCounts concurrent, MarkCounts check)
    : Exception($"checkmark: object 0x{address:x} ({size} bytes, size class {sizeClass}) is reachable from the roots but the " +
        $"concurrent mark left it unmarked (concurrent mark: {concurrent.Objects} objects; stop-the-world check: {check.Objects})")
{
    public nuint Address { get; } = address;
}

/// <summary>
/// Checkmark (Go's <c>GODEBUG=gccheckmark=1</c>, <see cref="HeapOptions.Checkmark"/>): at pause 2 of a concurrent cycle
/// (GcConcurrent.cs), with the mark drained and the world stopped, the concurrent mark's bits are set aside, a
/// stop-the-world mark runs from scratch from the root sets, and every object it reaches must carry the concurrent
/// mark's bit; the first that does not throws <see cref="CheckmarkException"/> naming it. Either way the concurrent bits
/// come back; on failure every mark is dropped instead, so nothing is swept on the broken mark's evidence. Objects
/// reached only through other nodes' pointers (a coordinated cycle) are not re-checked: the local mark cannot see them.
/// </summary>
public sealed unsafe partial class NodeHeap
{
    private void Checkmark()
    {
        var saved = new Dictionary<nint, ulong[]>();
        ForEachInUseSpan(s =>
        {
            ulong[] bits = new ulong[MSpan.BitWords];
            for (int w = 0; w < MSpan.BitWords; w++) bits[w] = s->MarkBits[w];
            saved[(nint)s] = bits;
            s->ClearMarks();
        });
        MarkCounts concurrentCounts = _marker!.Counts;
        using var check = new GcMarker(this, _mheap) { Generation = PointerGeneration };
        check.Reset();
        RootSet[] sets;
        using (_cachesLock.EnterScope()) sets = [.. _roots];
        foreach (RootSet r in sets)
        {
            foreach (ulong w in r.Words) check.Shade(w);
        }
        check.Drain();
        CheckmarkException? failure = null;
        ForEachInUseSpan(s =>
        {
            ulong[] bits = saved[(nint)s];
            for (int w = 0; w < MSpan.BitWords && failure == null; w++)
            {
                ulong missed = s->MarkBits[w] & ~bits[w];
                if (missed == 0) continue;
                int index = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(missed);
                nuint obj = s->IsLarge ? s->StartAddr : s->StartAddr + (nuint)index * (nuint)s->ElemSize;
                failure = new CheckmarkException(obj, s->IsLarge ? (long)s->Bytes : s->ElemSize, s->SizeClass, concurrentCounts, check.Counts);
            }
            for (int w = 0; w < MSpan.BitWords; w++) s->MarkBits[w] = bits[w];
        });
        if (failure == null) return;
        foreach (MCentral c in _centrals) c.ClearMarks();
        _mheap.ClearLargeMarks();
        throw failure;
    }

    /// <summary>Every in-use span, by the spans array (world stopped).</summary>
    private void ForEachInUseSpan(SpanAction action)
    {
        var spans = (MSpan**)Layout.SpansStart;
        nuint start = _mheap.ArenaStart, used = _mheap.ArenaUsed;
        for (nuint page = start; page < used; page += HeapConstants.PageSize)
        {
            MSpan* s = MHeap.SpanOf(spans, start, page);
            if (s != null && s->State == SpanState.InUse && s->StartAddr == page) action(s);
        }
    }

    private delegate void SpanAction(MSpan* s);
}
