namespace ClusterHeap.Heap;

// ReadMemStats: sums the owners' counters (mcaches, mcentrals, mheap, leases). See MemStats.cs for what
// each figure counts.
public sealed unsafe partial class NodeHeap
{
    /// <summary>Go's ReadMemStats: exact, with the world stopped for the read.</summary>
    public MemStats ReadMemStats()
    {
        _world.EnterWriteLock();
        try
        {
            return ReadMemStatsStopped();
        }
        finally
        {
            _world.ExitWriteLock();
        }
    }

    private MemStats ReadMemStatsStopped()
    {
        long[] objectMallocs = new long[SizeClasses.NumClasses];
        long[] slotAllocs = new long[SizeClasses.NumClasses];
        long[] ownerFrees = new long[SizeClasses.NumClasses];    // objects freed by mcache owners without mcentral
        long[] slotReuses = new long[SizeClasses.NumClasses];    // allocations on slots that stayed allocated (MCache.SlotReuses)
        long[] stacked = new long[SizeClasses.NumClasses];       // allocated slots holding nothing: free stacks' entries
        long tinyAllocs;
        using (_cachesLock.EnterScope())
        {
            Array.Copy(_retiredObjectMallocs, objectMallocs, objectMallocs.Length);
            Array.Copy(_retiredSlotAllocs, slotAllocs, slotAllocs.Length);
            Array.Copy(_retiredOwnerFrees, ownerFrees, ownerFrees.Length);
            Array.Copy(_retiredSlotReuses, slotReuses, slotReuses.Length);
            tinyAllocs = _retiredTinyAllocs;
            foreach (MCache c in _caches)
            {
                for (int i = 0; i < SizeClasses.NumClasses; i++)
                {
                    objectMallocs[i] += c.ObjectMallocs(i);
                    slotAllocs[i] += c.SlotAllocs[i];
                    ownerFrees[i] += c.OwnerFrees(i);
                    slotReuses[i] += c.SlotReuses(i);
                    stacked[i] += c.StackedObjects(i);
                }
                tinyAllocs += c.TinyAllocs;
            }
        }
        long leasesLent, leasesReturned, leasesReclaimed;
        int activeLeases;
        using (_leaseLock.EnterScope())
        {
            for (int i = 0; i < SizeClasses.NumClasses; i++)
            {
                objectMallocs[i] += _lentSlots[i];
                slotAllocs[i] += _lentSlots[i];
            }
            leasesLent = _leasesLent;
            leasesReturned = _leasesReturned;
            leasesReclaimed = _leasesReclaimed;
            activeLeases = _leases.Count;
        }
        long[] objectFrees = ownerFrees;                     // plus mcentral's, below
        long[] slotFrees = new long[SizeClasses.NumClasses];
        long refills = 0;
        foreach (MCentral central in _centrals)
        {
            using (central.Enter())
            {
                objectFrees[central.SpanClass >> 1] += central.ObjectFrees;
                slotFrees[central.SpanClass >> 1] += central.SlotFrees;
                refills += central.Refills;
            }
        }
        HeapPageStats pages = _mheap.ReadPageStats();
        GcStats gc = ReadGcStatsStopped();

        var bySize = new SizeClassStats[SizeClasses.NumClasses - 1];
        long heapAlloc = pages.LargeAllocBytes - pages.LargeFreeBytes;
        long totalAlloc = pages.LargeAllocBytes;
        long mallocs = objectMallocs[0];
        long frees = pages.LargeFrees;
        long stackedObjects = 0, stackedBytes = 0;
        for (int c = 1; c < SizeClasses.NumClasses; c++)
        {
            int size = SizeClasses.SizeOf(c);
            bySize[c - 1] = new SizeClassStats(c, size, objectMallocs[c], objectFrees[c]);
            heapAlloc += (slotAllocs[c] - slotFrees[c] - stacked[c]) * size;
            totalAlloc += (slotAllocs[c] + slotReuses[c]) * size;
            stackedObjects += stacked[c];
            stackedBytes += stacked[c] * size;
            mallocs += objectMallocs[c];
            frees += objectFrees[c];
        }
        return new MemStats
        {
            TotalAlloc = totalAlloc,
            Sys = pages.HeapSys + pages.SpansSys + pages.BitmapSys + pages.FixAllocSys,
            Mallocs = mallocs,
            Frees = frees,
            HeapAlloc = heapAlloc,
            HeapSys = pages.HeapSys,
            HeapIdle = pages.Idle,
            HeapInuse = pages.InUse,
            HeapReleased = pages.Released,
            TinyAllocs = tinyAllocs,
            BySize = bySize,
            SpansSys = pages.SpansSys,
            BitmapSys = pages.BitmapSys,
            ArenaSize = Layout.ArenaSize,
            GrowthLimit = _mheap.GrowthLimit,
            Refills = refills,
            LeasesLent = leasesLent,
            LeasesReturned = leasesReturned,
            LeasesReclaimed = leasesReclaimed,
            ActiveLeases = activeLeases,
            LargeObjects = pages.LargeAllocs - pages.LargeFrees,
            LargeBytes = pages.LargeAllocBytes - pages.LargeFreeBytes,
            ScavengedTotal = pages.ScavengedTotal,
            StackedObjects = stackedObjects,
            StackedBytes = stackedBytes,
            NumGC = gc.NumGC,
            NumForcedGC = gc.NumForcedGC,
            PauseTotalNs = gc.PauseTotalNs,
            RecentPausesNs = gc.RecentPausesNs,
            NextGC = gc.NextGC,
            LastGC = gc.LastGC,
            GCCPUFraction = gc.GCCPUFraction,
            HeapMarked = gc.HeapMarked,
            HeapLive = gc.HeapLive,
            GcFrees = gc.GcFrees,
            SweepPending = gc.SweepPending,
        };
    }
}
