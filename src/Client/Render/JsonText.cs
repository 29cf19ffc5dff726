using System.Text.Json;
using ClusterHeap.Client.Bench;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Render;

/// <summary>
/// The --json form of the one-shot commands: one JSON document per command on standard output, keys in
/// snake_case named as the contracts' fields are (heap_alloc, heap_objects, …), byte counts as numbers of
/// bytes, addresses as hex strings. The text tables (<see cref="StatsText"/>) show the same data for eyes.
/// </summary>
public static class JsonText
{
    private static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    /// <summary>stats: the sum row, each node's row, the memory limit (null when none), grants and leases.</summary>
    public static string Cluster(ClusterStats s) => Write(new
    {
        sum = s.Sum,
        nodes = s.Nodes.OrderBy(n => n.Slot).ToArray(),
        memory_limit = s.MemoryLimit == long.MaxValue ? (long?)null : s.MemoryLimit,
        total_granted = s.TotalGranted,
        active_leases = s.ActiveLeases,
        unreachable = s.Unreachable,
    });

    /// <summary>stats NODE: the node's MemStats, with BySize.</summary>
    public static string Node(NodeStats n) => Write(n);

    /// <summary>nodes: each live node, and where the central heap runs.</summary>
    public static string Nodes(NodeInfo[] nodes, CentralView view) => Write(new
    {
        nodes = nodes.Select(n => new
        {
            name = n.Name,
            slot = n.Slot,
            generation = n.Generation,
            reserved_at = $"0x{HeapPointer.HintOf(n.Slot):x12}",
            silo = n.Silo.ToParsableString(),
            granted = n.Granted,
        }),
        central_heap_silo = view.HostSilo?.ToParsableString(),
        active_leases = view.Leases.Length,
    });

    /// <summary>verify: ok overall, and each node's (and the cluster tier's) result.</summary>
    public static string Verify(VerifyResult[] results) => Write(new
    {
        ok = results.All(r => r.Ok),
        results = results.Select(r => new { node = r.Node, ok = r.Ok, problem = r.Problem, @checked = r.Checked }),
    });

    /// <summary>spans NODE [CLASS]: one object per span.</summary>
    public static string Spans(string node, SpanRow[] spans) => Write(new
    {
        node,
        spans = spans.Select(s => new
        {
            start = $"0x{s.Start:x12}",
            pages = s.Pages,
            state = s.InUse ? (s.LeaseId != 0 ? "leased" : "in_use") : "free",
            size_class = s.SizeClass,
            noscan = s.Noscan,
            elem_size = s.ElemSize,
            objects = s.Objects,
            live = s.Live,
            cache = s.Cache.Length == 0 ? null : s.Cache,
            lease_id = s.LeaseId,
            released_pages = s.ReleasedPages,
        }),
    });

    /// <summary>info classes: Go's table, one object per class (class 0, large objects, left out as Go's table does).</summary>
    public static string Classes() => Write(SizeClasses.Table.Select(c => new
    {
        @class = c.Class,
        size = c.Size,
        span_bytes = c.SpanBytes,
        objects = c.Objects,
        tail_waste = c.TailWaste,
        max_waste_percent = Math.Round(c.MaxWastePercent, 2),
    }));

    /// <summary>bench calls: the target, each measurement's rate and measured latency percentiles.</summary>
    public static string Calls(string node, string cluster, TimeSpan each, IEnumerable<CallsBench.Measurement> results, bool interrupted) => Write(new
    {
        mcache = $"{node}/0",
        cluster,
        seconds_per_measurement = each.TotalSeconds,
        interrupted,
        measurements = results.Select(m => new
        {
            name = m.Name,
            rate = Finite(Math.Round(m.Rate, 1)),
            p50_us = Finite(Math.Round(m.P50Us, 1)),
            p99_us = Finite(Math.Round(m.P99Us, 1)),
        }),
    });

    private static double? Finite(double v) => double.IsFinite(v) ? v : null;

    private static string Write<T>(T value) => JsonSerializer.Serialize(value, Options);
}
