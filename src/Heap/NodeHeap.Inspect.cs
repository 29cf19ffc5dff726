namespace ClusterHeap.Heap;

// Looking at the heap from outside: the verifier and the span listing. Both stop the world.
public sealed unsafe partial class NodeHeap
{
    /// <summary>Checks every invariant (HeapVerifier.cs) with the world stopped; reports the first broken one.</summary>
    public VerifyReport Verify()
    {
        _world.EnterWriteLock();
        try
        {
            MemStats stats = ReadMemStatsStopped();
            MCache[] caches = CachesSnapshot();
            IReadOnlyList<long> leases = ActiveLeases;
            foreach (MCentral c in _centrals) c.Lock();
            try
            {
                VerifyReport report = null!;
                _mheap.WithLock(() => report = new HeapVerifier(_mheap, _centrals, stats, caches, [.. leases]) { Marking = _marking || _markSession != null }.Run());
                return report;
            }
            finally
            {
                for (int i = _centrals.Length - 1; i >= 0; i--) _centrals[i].Unlock();
            }
        }
        finally
        {
            _world.ExitWriteLock();
        }
    }

    /// <summary>Every span and free run in address order; <paramref name="sizeClass"/> ≥ 0 keeps in-use spans of that class only.</summary>
    public IReadOnlyList<SpanInfo> GetSpans(int sizeClass = -1)
    {
        var rows = new List<SpanInfo>();
        _world.EnterWriteLock();
        try
        {
            // Free stacks' entries (freed objects, dead tiny blocks) hold nothing live.
            var stacked = new Dictionary<nint, int>();
            foreach (MCache cache in CachesSnapshot())
            {
                for (int spc = 0; spc < SizeClasses.NumSpanClasses; spc++)
                {
                    foreach (nuint a in cache.Stacked(spc))
                    {
                        nint span = (nint)_mheap.SpanOf(a);
                        stacked[span] = stacked.GetValueOrDefault(span) + 1;
                    }
                }
            }
            uint sweepGen = _mheap.SweepGen;
            _mheap.WithLock(() =>
            {
                nuint p = _mheap.ArenaStart, used = _mheap.ArenaUsed;
                while (p < used)
                {
                    MSpan* s = _mheap.SpanOf(p);
                    if (s == null) break;
                    bool inUse = s->State == SpanState.InUse;
                    if (sizeClass < 0 || (inUse && s->SizeClass == sizeClass))
                    {
                        rows.Add(new SpanInfo(
                            s->StartAddr, (long)s->NPages, inUse, inUse ? s->SizeClass : 0, inUse && s->Noscan,
                            inUse ? (s->IsLarge ? (int)Math.Min(s->Bytes, int.MaxValue) : s->ElemSize) : 0,
                            inUse ? s->NElems : 0, inUse ? s->Live - stacked.GetValueOrDefault((nint)s) : 0,
                            !inUse ? "free" : s->Cache switch { SpanCache.MCache => "mcache", SpanCache.Lease => "lease", _ => "central" },
                            s->LeaseId, inUse ? 0 : (long)s->NPReleased)
                        { Unswept = inUse && s->SweepGen != sweepGen });
                    }
                    p = s->EndAddr;
                }
            });
        }
        finally
        {
            _world.ExitWriteLock();
        }
        return rows;
    }
}
