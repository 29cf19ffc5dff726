using System.Diagnostics;
using System.Diagnostics.Metrics;
using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using ClusterHeap.Heap;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Metrics;

/// <summary>
/// The <c>ClusterHeap</c> meter of one silo: its node heap's MemStats, BySize, refills, leases,
/// grants and scavenger as observable instruments, tagged <c>node</c> and <c>slot</c>, and the node heap's
/// collector (cycles, pauses, goal); ClusterHeapMeter.Central.cs adds the central heap's view (nodes, grants, the
/// cluster limit, the cluster collector's cycles) on the silo that hosts the central heap.
/// </summary>
/// <remarks>
/// Names follow Go's <c>runtime/metrics</c> where Go has the figure, in OpenTelemetry style: the path
/// with dots, the unit as the instrument's unit, and an <c>.objects</c> suffix where Go's unit is
/// objects (<c>/gc/heap/allocs:bytes</c> is <c>clusterheap.gc.heap.allocs</c> in bytes,
/// <c>/gc/heap/allocs:objects</c> is <c>clusterheap.gc.heap.allocs.objects</c>), so Prometheus shows
/// <c>clusterheap_gc_heap_allocs_bytes_total</c> and <c>clusterheap_gc_heap_allocs_objects_total</c>.
/// Figures Go has no name for (refills, leases, grants, the arena) are <c>clusterheap.mcache.*</c>,
/// <c>clusterheap.leases.*</c>, <c>clusterheap.heap.*</c>, <c>clusterheap.central.*</c>.
/// <para>
/// Every instrument but two is observable: nothing is recorded on the allocation path, and with no listener
/// (no <c>--metrics-port</c>, no dotnet-counters) nothing runs at all. The two, the pause histograms
/// <c>clusterheap.gc.pauses</c> and <c>clusterheap.central.gc.pauses</c> (a histogram cannot be observed), are fed
/// from those same reads: each read records the pauses of the cycles it is the first to see. A collection reads the node's
/// stats once (<see cref="HeapNodeService.ReadStats"/>, the same read GetStats answers with, world
/// stopped for the read) and every instrument of that collection reports from that one read: a read
/// younger than <see cref="SampleAge"/> is reused.
/// </para>
/// </remarks>
public sealed partial class ClusterHeapMeter : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    /// <summary>The meter's name (OpenTelemetry <c>AddMeter</c>, <c>dotnet-counters --counters</c>).</summary>
    public const string Name = "ClusterHeap";

    /// <summary>How long one stats read serves the instruments (one collection's worth).</summary>
    public static readonly TimeSpan SampleAge = TimeSpan.FromMilliseconds(50);

    private readonly HeapNodeService _node;
    private readonly CentralHeapBoard _central;
    private readonly Meter _meter;
    private readonly Lock _sampleLock = new();
    private NodeStats? _sample;
    private long _sampledAt;
    private Histogram<double> _pauses = null!;   // set by CollectorInstruments
    private long _pausesRecorded;                // NumGC of the last cycle whose pause went into _pauses; _sampleLock

    /// <summary>Bucket bounds of <c>clusterheap.gc.pauses</c>, in seconds: 10 µs to 1 s.</summary>
    private static readonly double[] PauseBuckets = [1e-5, 2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1];

    /// <summary>Created by DI, one per silo.</summary>
    public ClusterHeapMeter(HeapNodeService node, CentralHeapBoard central, IMeterFactory meters)
    {
        _node = node;
        _central = central;
        _meter = meters.Create(Name, typeof(ClusterHeapMeter).Assembly.GetName().Version?.ToString());
        NodeInstruments();
        CollectorInstruments();
        CentralInstruments();
    }

    private void NodeInstruments()
    {
        // Go's /gc/heap/*: cumulative allocations and frees, live objects, tiny allocations.
        Counter("clusterheap.gc.heap.allocs", "By", "Cumulative bytes allocated (slot bytes; Go /gc/heap/allocs:bytes, MemStats.TotalAlloc).", s => s.TotalAlloc);
        Counter("clusterheap.gc.heap.allocs.objects", "{object}", "Cumulative objects allocated (Go /gc/heap/allocs:objects, MemStats.Mallocs).", s => s.Mallocs);
        Counter("clusterheap.gc.heap.frees", "By", "Cumulative bytes freed (Go /gc/heap/frees:bytes, TotalAlloc - HeapAlloc).", s => s.TotalAlloc - s.HeapAlloc);
        Counter("clusterheap.gc.heap.frees.objects", "{object}", "Cumulative objects freed (Go /gc/heap/frees:objects, MemStats.Frees).", s => s.Frees);
        Counter("clusterheap.gc.heap.tiny.allocs.objects", "{object}", "Tiny allocations served from 16-byte blocks (Go /gc/heap/tiny/allocs:objects).", s => s.TinyAllocs);
        Level("clusterheap.gc.heap.objects.objects", "{object}", "Live objects (Go /gc/heap/objects:objects, MemStats.HeapObjects).", s => s.HeapObjects);

        // Go's /memory/classes/*: where the node's mapped bytes are; the heap classes sum to HeapSys,
        // and with metadata to Sys.
        Level("clusterheap.memory.classes.heap.objects", "By", "Bytes of live objects (Go /memory/classes/heap/objects:bytes, MemStats.HeapAlloc).", s => s.HeapAlloc);
        Level("clusterheap.memory.classes.heap.unused", "By", "In-use span bytes holding no live object (Go /memory/classes/heap/unused:bytes, HeapInuse - HeapAlloc).", s => s.HeapInuse - s.HeapAlloc);
        Level("clusterheap.memory.classes.heap.free", "By", "Free, still committed bytes (Go /memory/classes/heap/free:bytes, HeapIdle - HeapReleased).", s => s.HeapIdle - s.HeapReleased);
        Level("clusterheap.memory.classes.heap.released", "By", "Free bytes returned to the OS (Go /memory/classes/heap/released:bytes, MemStats.HeapReleased).", s => s.HeapReleased);
        Level("clusterheap.memory.classes.metadata.other", "By", "Spans array, bitmap and span structures mapped (Go /memory/classes/metadata/*, Sys - HeapSys).", s => s.Sys - s.HeapSys);
        Level("clusterheap.memory.classes.total", "By", "All bytes mapped from the OS (Go /memory/classes/total:bytes, MemStats.Sys).", s => s.Sys);

        // BySize: Go has a histogram of allocation sizes; the heap counts per size class.
        _meter.CreateObservableCounter("clusterheap.gc.heap.allocs_by_size.objects", () => BySize(static c => c.Mallocs), "{object}",
            "Cumulative objects allocated per size class (MemStats.BySize[].Mallocs), tagged size_class and size.");
        _meter.CreateObservableCounter("clusterheap.gc.heap.frees_by_size.objects", () => BySize(static c => c.Frees), "{object}",
            "Cumulative objects freed per size class (MemStats.BySize[].Frees), tagged size_class and size.");

        // ClusterHeap's own: the arena, large objects, refills, leases, grants, the scavenger.
        Level("clusterheap.heap.arena", "By", "Arena bytes reserved by this node.", s => s.ArenaSize);
        Level("clusterheap.heap.growth_limit", "By", "Arena bytes the central heap granted this node (its growth limit).", s => s.Granted);
        Level("clusterheap.heap.large.objects", "{object}", "Live large objects (over 32 KiB, a span each).", s => s.LargeObjects);
        Level("clusterheap.heap.large", "By", "Bytes of live large objects' spans.", s => s.LargeBytes);
        Counter("clusterheap.mcache.refills", "{span}", "Spans mcaches took from mcentral (Go's mcentral.cacheSpan).", s => s.Refills);
        Counter("clusterheap.leases.lent", "{lease}", "Spans this node lent to other nodes' mcaches.", s => s.LeasesLent);
        Counter("clusterheap.leases.taken", "{lease}", "Spans this node's mcaches leased from other nodes.", s => s.LeasesTaken);
        Counter("clusterheap.leases.allocs.objects", "{object}", "Objects this node's mcaches handed out from leased spans.", s => s.LeasedMallocs);
        _meter.CreateObservableUpDownCounter("clusterheap.leases.active", ActiveLeases, "{lease}",
            "Leases out right now, tagged direction=lent (this node's spans) or held (other nodes' spans in this node's mcaches).");
        Counter("clusterheap.grants", "{grant}", "Growth grants this node received from the central heap.", s => s.Grants);
        Counter("clusterheap.scavenger.released", "By", "Bytes the scavenger returned to the OS (cumulative).", s => s.ScavengedTotal);
    }

    private void CollectorInstruments()
    {
        // Go's /gc/*: the node heap's own cycles (NodeHeap.Gc.cs), from the same stats read.
        Counter("clusterheap.gc.cycles.total", "{gc-cycle}", "Completed collection cycles on this node's heap (Go /gc/cycles/total:gc-cycles, MemStats.NumGC).", static s => s.Gc.NumGC);
        Counter("clusterheap.gc.cycles.forced", "{gc-cycle}", "Cycles run on request or before an allocation failed (Go /gc/cycles/forced:gc-cycles, MemStats.NumForcedGC).", static s => s.Gc.NumForcedGC);
        Counter("clusterheap.gc.cycles.automatic", "{gc-cycle}", "Cycles the pacer started (Go /gc/cycles/automatic:gc-cycles, NumGC - NumForcedGC).", static s => s.Gc.NumGC - s.Gc.NumForcedGC);
        Level("clusterheap.gc.heap.goal", "By", "The heap goal: the pacer starts a cycle when heap_live reaches it (Go /gc/heap/goal:bytes, MemStats.NextGC; 9223372036854775807 = never, collector off).", static s => s.Gc.NextGC);
        Level("clusterheap.gc.heap.live", "By", "Bytes the last mark found live (Go /gc/heap/live:bytes, heap_marked).", static s => s.Gc.HeapMarked);
        Counter("clusterheap.gc.heap.frees.swept.objects", "{object}", "Objects the sweep reclaimed, also counted in clusterheap.gc.heap.frees.objects.", static s => s.Gc.GcFrees);
        Level("clusterheap.gc.sweep.pending", "{boolean}", "1 while spans of the last cycle wait to be swept.", static s => s.Gc.SweepPending ? 1 : 0);
        _meter.CreateObservableCounter("clusterheap.gc.pause", () => NodeDouble(static s => s.Gc.PauseTotalNs / 1e9), "s",
            "Stop-the-world pause time of every cycle, summed (MemStats.PauseTotalNs).");
        _meter.CreateObservableGauge("clusterheap.gc.cpu_fraction", () => NodeDouble(static s => s.Gc.GCCPUFraction), "1",
            "Collector time over wall time times processors since the heap was created (MemStats.GCCPUFraction).");
        _pauses = _meter.CreateHistogram("clusterheap.gc.pauses", "s",
            "Stop-the-world pause of each cycle (Go /gc/pauses:seconds, MemStats.PauseNs), recorded when a stats read first sees the cycle.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = PauseBuckets });
    }

    private void Counter(string name, string unit, string description, Func<NodeStats, long> value) =>
        _meter.CreateObservableCounter(name, () => Node(value), unit, description);

    private void Level(string name, string unit, string description, Func<NodeStats, long> value) =>
        _meter.CreateObservableUpDownCounter(name, () => Node(value), unit, description);

    /// <summary>One measurement from this collection's stats read; none while the heap is not up.</summary>
    private IEnumerable<Measurement<long>> Node(Func<NodeStats, long> value) =>
        Sample() is { } s ? [new Measurement<long>(value(s), NodeTags(s))] : [];

    private IEnumerable<Measurement<double>> NodeDouble(Func<NodeStats, double> value) =>
        Sample() is { } s ? [new Measurement<double>(value(s), NodeTags(s))] : [];

    private IEnumerable<Measurement<long>> BySize(Func<SizeClassStats, long> value)
    {
        if (Sample() is not { } s)
        {
            return [];
        }

        var rows = new List<Measurement<long>>(s.BySize.Length);
        foreach (SizeClassStats c in s.BySize)
        {
            var tags = new TagList { { "node", s.Node }, { "slot", s.Slot }, { "size_class", c.SizeClass }, { "size", c.Size } };
            rows.Add(new Measurement<long>(value(c), tags));
        }

        return rows;
    }

    private IEnumerable<Measurement<long>> ActiveLeases() =>
        Sample() is { } s
            ? [new Measurement<long>(s.ActiveLeasesLent, [.. NodeTags(s), new("direction", "lent")]),
               new Measurement<long>(s.ActiveLeasesHeld, [.. NodeTags(s), new("direction", "held")])]
            : [];

    private static KeyValuePair<string, object?>[] NodeTags(NodeStats s) => [new("node", s.Node), new("slot", s.Slot)];

    /// <summary>This collection's read of the node's stats: reused while younger than <see cref="SampleAge"/>.</summary>
    private NodeStats? Sample()
    {
        if (!_node.Ready.IsCompletedSuccessfully)
        {
            return null;
        }

        lock (_sampleLock)
        {
            long now = Stopwatch.GetTimestamp();
            if (_sample is null || Stopwatch.GetElapsedTime(_sampledAt, now) >= SampleAge)
            {
                try
                {
                    _sample = _node.ReadStats();
                }
                catch (Exception e) when (e is ObjectDisposedException or ClusterHeapException)
                {
                    return null; // the silo is stopping and its heap is gone
                }

                _sampledAt = now;
                RecordNewPauses(_sample);
            }

            return _sample;
        }
    }

    /// <summary>
    /// Records into <c>clusterheap.gc.pauses</c> the pauses of the cycles this read is the first to see: MemStats keeps
    /// the last 256, so a read that comes more than 256 cycles after the one before records only those 256.
    /// </summary>
    private void RecordNewPauses(NodeStats s)
    {
        long[] recent = s.Gc.RecentPausesNs;
        long fresh = Math.Min(s.Gc.NumGC - _pausesRecorded, recent.Length);
        for (long i = recent.Length - fresh; i < recent.Length; i++)
        {
            _pauses.Record(recent[i] / 1e9, NodeTags(s));
        }

        _pausesRecorded = s.Gc.NumGC;
    }

    /// <summary>
    /// Nothing to start: the meter is registered as a lifecycle participant so that the silo creates
    /// it with its other participants (instruments exist from the silo's start, not from a first
    /// resolution), and disposes it before the node service it reads.
    /// </summary>
    public void Participate(ISiloLifecycle lifecycle)
    {
    }

    /// <inheritdoc/>
    public void Dispose() => _meter.Dispose();
}
