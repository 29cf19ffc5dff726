using System.Globalization;
using ClusterHeap.Client.Cli;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Render;

/// <summary>Cluster and node statistics, nodes, spans and verifier results as text tables.</summary>
public static class StatsText
{
    public static void Cluster(TextWriter output, ClusterStats stats)
    {
        // 13 columns that fit a 120-column terminal; idle and each node's leases are in `stats NODE` and --json.
        var t = new Table("node", "slot", "heap alloc", "in use", "released", "committed", "objects", "mallocs", "frees", "refills", "leases", "granted", "live");
        foreach (NodeStats n in stats.Nodes.OrderBy(n => n.Slot)) Row(t, n);
        Row(t, stats.Sum);
        t.WriteTo(output);
        string limit = stats.MemoryLimit == long.MaxValue ? "none" : ByteSize.Format(stats.MemoryLimit);
        output.WriteLine("leases: spans lent/taken since start; live: heap alloc / committed");
        output.WriteLine($"memory limit {limit}, granted {ByteSize.Format(stats.TotalGranted)}, active leases {stats.ActiveLeases}" +
            (stats.Unreachable.Length > 0 ? $", unreachable: {string.Join(", ", stats.Unreachable)}" : ""));
    }

    public static void Node(TextWriter output, NodeStats n)
    {
        var t = new Table("field", "value");
        t.Add("node", n.Node).Add("slot / generation", $"{n.Slot} / {n.Generation}")
            .Add("HeapAlloc", Bytes(n.HeapAlloc)).Add("TotalAlloc", Bytes(n.TotalAlloc)).Add("Sys", Bytes(n.Sys))
            .Add("HeapSys", Bytes(n.HeapSys)).Add("HeapInuse", Bytes(n.HeapInuse)).Add("HeapIdle", Bytes(n.HeapIdle))
            .Add("HeapReleased", Bytes(n.HeapReleased)).Add("HeapObjects", n.HeapObjects).Add("Mallocs", n.Mallocs).Add("Frees", n.Frees)
            .Add("refills", n.Refills).Add("leases lent / taken", $"{n.LeasesLent} / {n.LeasesTaken}")
            .Add("leases out / held now", $"{n.ActiveLeasesLent} / {n.ActiveLeasesHeld}").Add("leased mallocs", n.LeasedMallocs)
            .Add("granted", Bytes(n.Granted)).Add("grants", n.Grants).Add("arena", Bytes(n.ArenaSize))
            .Add("fragmentation in spans", Bytes(n.InternalFragmentation)).Add("idle committed", Bytes(n.IdleCommitted))
            .Add("live / committed", Percent(n.Utilization));
        t.WriteTo(output);
        SizeClassStats[] classes = n.BySize.Where(c => c.Mallocs > 0).ToArray();
        if (classes.Length == 0) return;
        output.WriteLine("by size:");
        var b = new Table("class", "size", "mallocs", "frees", "live");
        foreach (SizeClassStats c in classes) b.Add(c.SizeClass, c.Size, c.Mallocs, c.Frees, c.Live);
        b.WriteTo(output, "  ");
    }

    public static void Nodes(TextWriter output, IEnumerable<NodeInfo> nodes)
    {
        var t = new Table("node", "slot", "generation", "reserved at", "silo", "granted");
        foreach (NodeInfo n in nodes)
            t.Add(n.Name, n.Slot, n.Generation, $"0x{HeapPointer.HintOf(n.Slot):x12}", n.Silo.ToParsableString(), ByteSize.Format(n.Granted));
        t.WriteTo(output);
    }

    public static void Spans(TextWriter output, IReadOnlyList<SpanRow> spans)
    {
        var t = new Table("start", "pages", "state", "class", "elem", "alloc/objects", "cache", "lease", "released");
        foreach (SpanRow s in spans)
        {
            t.Add($"0x{s.Start:x12}", s.Pages, s.InUse ? (s.LeaseId != 0 ? "leased" : "in use") : "free",
                s.InUse ? s.SizeClass.ToString(CultureInfo.InvariantCulture) + (s.Noscan ? " noscan" : " scan") : "-",
                s.InUse ? s.ElemSize.ToString(CultureInfo.InvariantCulture) : "-",
                s.InUse ? $"{s.Live}/{s.Objects}" : "-", s.Cache.Length == 0 ? "-" : s.Cache,
                s.LeaseId == 0 ? "-" : s.LeaseId.ToString(CultureInfo.InvariantCulture), s.ReleasedPages);
        }
        t.WriteTo(output);
        output.WriteLine($"{spans.Count} span(s), {spans.Count(s => s.InUse)} in use, {spans.Sum(s => (long)s.Pages)} pages");
    }

    /// <summary>Prints each verifier result; true when all are ok.</summary>
    public static bool Verify(TextWriter output, IEnumerable<VerifyResult> results)
    {
        bool ok = true;
        foreach (VerifyResult r in results)
        {
            ok &= r.Ok;
            output.WriteLine(r.Ok ? $"ok    {r.Node}: {r.Checked}" : $"FAIL  {r.Node}: {r.Problem}");
        }
        return ok;
    }

    public static string Percent(double v) => (v * 100).ToString("0.0", CultureInfo.InvariantCulture) + " %";

    private static string Bytes(long b) => $"{ByteSize.Format(b)} ({b})";

    private static void Row(Table t, NodeStats n) =>
        t.Add(n.Node, n.Slot < 0 ? "" : n.Slot.ToString(CultureInfo.InvariantCulture), ByteSize.Format(n.HeapAlloc), ByteSize.Format(n.HeapInuse),
            ByteSize.Format(n.HeapReleased), ByteSize.Format(n.HeapSys - n.HeapReleased), n.HeapObjects, n.Mallocs, n.Frees,
            n.Refills, $"{n.LeasesLent}/{n.LeasesTaken}", ByteSize.Format(n.Granted), Percent(n.Utilization));
}
