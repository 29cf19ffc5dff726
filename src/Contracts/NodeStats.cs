using ClusterHeap.Heap;

namespace ClusterHeap.Contracts;

/// <summary>
/// One node's statistics: the heap fields of Go's runtime.MemStats (from the node heap's ReadMemStats)
/// plus the cluster tier's counters. <see cref="ClusterStats"/> sums these over live nodes.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodeStats")]
public sealed record NodeStats
{
    /// <summary>Node (silo) name; "cluster" for a sum row.</summary>
    [Id(0)] public string Node { get; init; } = "";
    /// <summary>Arena slot (-1 for a sum row).</summary>
    [Id(1)] public int Slot { get; init; } = -1;
    /// <summary>Slot generation (0 for a sum row).</summary>
    [Id(2)] public ushort Generation { get; init; }
    /// <summary>Bytes of allocated heap objects (same as HeapAlloc).</summary>
    [Id(3)] public long Alloc { get; init; }
    /// <summary>Cumulative bytes allocated.</summary>
    [Id(4)] public long TotalAlloc { get; init; }
    /// <summary>Bytes obtained from the OS (arena, spans array, bitmap mapped).</summary>
    [Id(5)] public long Sys { get; init; }
    /// <summary>Cumulative objects allocated.</summary>
    [Id(6)] public long Mallocs { get; init; }
    /// <summary>Cumulative objects freed.</summary>
    [Id(7)] public long Frees { get; init; }
    /// <summary>Bytes of live objects.</summary>
    [Id(8)] public long HeapAlloc { get; init; }
    /// <summary>Arena bytes mapped.</summary>
    [Id(9)] public long HeapSys { get; init; }
    /// <summary>Bytes in free spans.</summary>
    [Id(10)] public long HeapIdle { get; init; }
    /// <summary>Bytes in in-use spans.</summary>
    [Id(11)] public long HeapInuse { get; init; }
    /// <summary>Bytes returned to the OS by the scavenger.</summary>
    [Id(12)] public long HeapReleased { get; init; }
    /// <summary>Live objects.</summary>
    [Id(13)] public long HeapObjects { get; init; }
    /// <summary>mcache refills from mcentral.</summary>
    [Id(14)] public long Refills { get; init; }
    /// <summary>Spans lent to other nodes' mcaches (cumulative).</summary>
    [Id(15)] public long LeasesLent { get; init; }
    /// <summary>Spans leased from other nodes by this node's mcaches (cumulative).</summary>
    [Id(16)] public long LeasesTaken { get; init; }
    /// <summary>Leases this node has out right now.</summary>
    [Id(17)] public int ActiveLeasesLent { get; init; }
    /// <summary>Leases this node's mcaches hold right now.</summary>
    [Id(18)] public int ActiveLeasesHeld { get; init; }
    /// <summary>Objects this node's mcaches handed out from leased spans (cumulative).</summary>
    [Id(19)] public long LeasedMallocs { get; init; }
    /// <summary>The growth limit the central heap granted (arena bytes this node may map).</summary>
    [Id(20)] public long Granted { get; init; }
    /// <summary>Grants received from the central heap (cumulative).</summary>
    [Id(21)] public long Grants { get; init; }
    /// <summary>Configured arena size.</summary>
    [Id(22)] public long ArenaSize { get; init; }
    /// <summary>Per size class: [class, size, mallocs, frees].</summary>
    [Id(23)] public SizeClassStats[] BySize { get; init; } = [];
    /// <summary>Tiny allocations (noscan, under 16 B) served from tiny blocks.</summary>
    [Id(24)] public long TinyAllocs { get; init; }
    /// <summary>Live large objects (over 32 KiB, a span each).</summary>
    [Id(25)] public long LargeObjects { get; init; }
    /// <summary>Bytes of live large objects' spans.</summary>
    [Id(26)] public long LargeBytes { get; init; }
    /// <summary>Bytes returned to the OS by the scavenger (cumulative).</summary>
    [Id(27)] public long ScavengedTotal { get; init; }
    /// <summary>Spans array and bitmap bytes mapped.</summary>
    [Id(28)] public long MetadataSys { get; init; }
    /// <summary>Calls this node's data path (its mcache grains) made to the central heap: growth requests, lease requests and returns, large objects elsewhere (cumulative).</summary>
    [Id(29)] public long CentralCalls { get; init; }
    /// <summary>The node heap's collector: cycles, pauses, goal (empty in a sum row).</summary>
    [Id(30)] public NodeGcStats Gc { get; init; } = new();

    /// <summary>Fragmentation inside spans: HeapInuse - HeapAlloc.</summary>
    public long InternalFragmentation => HeapInuse - HeapAlloc;
    /// <summary>Free but still committed: HeapIdle - HeapReleased.</summary>
    public long IdleCommitted => HeapIdle - HeapReleased;
    /// <summary>Live bytes over committed bytes (HeapSys - HeapReleased), 0..1.</summary>
    public double Utilization => HeapSys - HeapReleased <= 0 ? 0 : (double)HeapAlloc / (HeapSys - HeapReleased);

    /// <summary>Field-by-field sum (BySize summed by class), for the cluster row.</summary>
    public static NodeStats Sum(IReadOnlyList<NodeStats> rows)
    {
        var bySize = new Dictionary<int, SizeClassStats>();
        foreach (NodeStats row in rows)
        {
            foreach (SizeClassStats c in row.BySize)
            {
                bySize[c.SizeClass] = bySize.TryGetValue(c.SizeClass, out SizeClassStats s)
                    ? s with { Mallocs = s.Mallocs + c.Mallocs, Frees = s.Frees + c.Frees }
                    : c;
            }
        }

        return new NodeStats
        {
            Node = "cluster",
            Alloc = rows.Sum(r => r.Alloc),
            TotalAlloc = rows.Sum(r => r.TotalAlloc),
            Sys = rows.Sum(r => r.Sys),
            Mallocs = rows.Sum(r => r.Mallocs),
            Frees = rows.Sum(r => r.Frees),
            HeapAlloc = rows.Sum(r => r.HeapAlloc),
            HeapSys = rows.Sum(r => r.HeapSys),
            HeapIdle = rows.Sum(r => r.HeapIdle),
            HeapInuse = rows.Sum(r => r.HeapInuse),
            HeapReleased = rows.Sum(r => r.HeapReleased),
            HeapObjects = rows.Sum(r => r.HeapObjects),
            Refills = rows.Sum(r => r.Refills),
            LeasesLent = rows.Sum(r => r.LeasesLent),
            LeasesTaken = rows.Sum(r => r.LeasesTaken),
            ActiveLeasesLent = rows.Sum(r => r.ActiveLeasesLent),
            ActiveLeasesHeld = rows.Sum(r => r.ActiveLeasesHeld),
            LeasedMallocs = rows.Sum(r => r.LeasedMallocs),
            Granted = rows.Sum(r => r.Granted),
            Grants = rows.Sum(r => r.Grants),
            CentralCalls = rows.Sum(r => r.CentralCalls),
            ArenaSize = rows.Sum(r => r.ArenaSize),
            TinyAllocs = rows.Sum(r => r.TinyAllocs),
            LargeObjects = rows.Sum(r => r.LargeObjects),
            LargeBytes = rows.Sum(r => r.LargeBytes),
            ScavengedTotal = rows.Sum(r => r.ScavengedTotal),
            MetadataSys = rows.Sum(r => r.MetadataSys),
            BySize = [.. bySize.Values.OrderBy(s => s.SizeClass)],
        };
    }
}

/// <summary>
/// The wire form of the heap's <see cref="SizeClassStats"/> (MemStats.BySize's row), which NodeStats.BySize carries
/// as it is: the heap knows nothing of Orleans, so the row crosses the wire through this surrogate.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.SizeClassStats")]
internal struct SizeClassStatsSurrogate
{
    [Id(0)] public int SizeClass;
    [Id(1)] public int Size;
    [Id(2)] public long Mallocs;
    [Id(3)] public long Frees;
}

[RegisterConverter]
internal sealed class SizeClassStatsConverter : IConverter<SizeClassStats, SizeClassStatsSurrogate>
{
    public SizeClassStats ConvertFromSurrogate(in SizeClassStatsSurrogate s) => new(s.SizeClass, s.Size, s.Mallocs, s.Frees);

    public SizeClassStatsSurrogate ConvertToSurrogate(in SizeClassStats c) =>
        new() { SizeClass = c.SizeClass, Size = c.Size, Mallocs = c.Mallocs, Frees = c.Frees };
}
