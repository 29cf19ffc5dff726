using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Grains.Node;

// One read of this node's statistics: the heap's ReadMemStats (exact, world stopped for the read) with
// the lease book's and the grants' counters. The heap node grain answers GetStats with it and the
// ClusterHeap meter publishes it, so a scrape and GetStats report the same figures.
public sealed partial class HeapNodeService
{
    /// <summary>MemStats plus the cluster tier's counters; throws until <see cref="Ready"/>.</summary>
    public NodeStats ReadStats()
    {
        MemStats s = Heap.ReadMemStats();
        LeaseBook leases = Leases;
        return new NodeStats
        {
            Node = Name,
            Slot = Slot,
            Generation = Generation,
            Alloc = s.Alloc,
            TotalAlloc = s.TotalAlloc,
            Sys = s.Sys,
            Mallocs = s.Mallocs,
            Frees = s.Frees,
            HeapAlloc = s.HeapAlloc,
            HeapSys = s.HeapSys,
            HeapIdle = s.HeapIdle,
            HeapInuse = s.HeapInuse,
            HeapReleased = s.HeapReleased,
            HeapObjects = s.HeapObjects,
            Refills = s.Refills,
            LeasesLent = s.LeasesLent,
            LeasesTaken = leases.TakenTotal,
            ActiveLeasesLent = s.ActiveLeases,
            ActiveLeasesHeld = leases.Held.Count,
            LeasedMallocs = leases.LeasedMallocs,
            Granted = Granted,
            Grants = Grants,
            CentralCalls = CentralCalls,
            ArenaSize = Options.ArenaSize,
            TinyAllocs = s.TinyAllocs,
            LargeObjects = s.LargeObjects,
            LargeBytes = s.LargeBytes,
            ScavengedTotal = s.ScavengedTotal,
            MetadataSys = s.SpansSys + s.BitmapSys,
            Gc = new NodeGcStats
            {
                NumGC = s.NumGC,
                NumForcedGC = s.NumForcedGC,
                PauseTotalNs = s.PauseTotalNs,
                RecentPausesNs = [.. s.RecentPausesNs],
                NextGC = s.NextGC,
                LastGC = s.LastGC,
                GCCPUFraction = s.GCCPUFraction,
                HeapMarked = s.HeapMarked,
                GcFrees = s.GcFrees,
                SweepPending = s.SweepPending,
            },
            BySize = [.. s.BySize],
        };
    }
}
