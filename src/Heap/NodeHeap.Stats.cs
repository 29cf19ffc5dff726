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
        var objectMallocs = new long[SizeClasses.NumClasses];
        var slotAllocs = new long[SizeClasses.NumClasses];
        var stackPushes = new long[SizeClasses.NumClasses];   // objects freed onto free stacks (user frees)
        var stackPops = new long[SizeClasses.NumClasses];     // objects allocated from free stacks
        var stacked = new long[SizeClasses.NumClasses];       // on free stacks now: slots allocated, objects freed
        long tinyAllocs, tinyBlockReuses, deadBlocks = 0;
        using (_cachesLock.EnterScope())
        {
            Array.Copy(_retiredObjectMallocs, objectMallocs, objectMallocs.Length);
            Array.Copy(_retiredSlotAllocs, slotAllocs, slotAllocs.Length);
            Array.Copy(_retiredStackPushes, stackPushes, stackPushes.Length);
            Array.Copy(_retiredStackPops, stackPops, stackPops.Length);
            tinyAllocs = _retiredTinyAllocs;
            tinyBlockReuses = _retiredTinyBlockReuses;
            stackPushes[SizeClasses.TinySizeClass] += _retiredTinyFrees;   // lock-free tiny frees: objects freed, like pushes
            foreach (MCache c in _caches)
            {
                for (int i = 0; i < SizeClasses.NumClasses; i++)
                {
                    objectMallocs[i] += c.ObjectMallocs(i);
                    slotAllocs[i] += c.SlotAllocs[i];
                    stackPushes[i] += c.StackPushes(i);
                    stackPops[i] += c.StackPops(i);
                    stacked[i] += c.StackedObjects(i);
                }
                tinyAllocs += c.TinyAllocs;
                stackPushes[SizeClasses.TinySizeClass] += c.TinyFrees;
                tinyBlockReuses += c.TinyBlockReuses;
                deadBlocks += c.DeadBlocks.Length;
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
        long[] objectFrees = stackPushes;
        var slotFrees = new long[SizeClasses.NumClasses];
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
            // Allocated slots that hold nothing: objects on free stacks and, in the tiny class, dead blocks kept for reuse.
            long idleSlots = stacked[c] + (c == SizeClasses.TinySizeClass ? deadBlocks : 0);
            long reusedSlots = stackPops[c] + (c == SizeClasses.TinySizeClass ? tinyBlockReuses : 0);
            heapAlloc += (slotAllocs[c] - slotFrees[c] - idleSlots) * size;
            totalAlloc += (slotAllocs[c] + reusedSlots) * size;
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
        };
    }
}
