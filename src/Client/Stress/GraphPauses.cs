using System.Globalization;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// Where stress graph's pauses went (README "Collection across nodes"; docs/DESIGN.md §12, "Where a pause goes"), as
/// report fields: the pauses' p50/p99/max as the coordinator clocks them (its stop to the last reply of the round that
/// opens the gates) and, where every node shares the coordinator's host clock, ended at the last gate's opening
/// (<see cref="GcPauseTimeline"/>); each part's median over the counted cycles; and the slowest counted cycle's parts
/// beside them — the coordinator's rounds, each round's way out and back on the shared clock, the slowest node's parts,
/// and what else ran in its pause windows (the .NET collector in each process, the thread pool's queue at the stop, the
/// client calls the gates drained and held). With ~20 counted cycles p99 is the slowest one, so its parts say what p99
/// waited on.
/// </summary>
internal static class GraphPauses
{
    /// <summary>
    /// The fields for <paramref name="counted"/> (the forced cycles past warm-up, with their parts) and
    /// <paramref name="paced"/> (cycles the pacer started: their pauses only), in report order.
    /// </summary>
    public static IEnumerable<KeyValuePair<string, object>> Fields(IReadOnlyList<ClusterGcCycle> counted, IReadOnlyList<ClusterGcCycle> paced)
    {
        double[] pauses = [.. counted.Concat(paced).Select(c => c.PauseMs).Order()];
        double[] gates = [.. counted.Concat(paced).Select(GcPauseTimeline.ToLastGateMs).OfType<double>().Order()];
        GcCycleParts[] parts = [.. counted.Select(c => c.Parts).OfType<GcCycleParts>()];
        GcNodeParts[] nodes = [.. counted.Select(c => Slowest(c.PerNode)).OfType<GcNodeParts>()];
        bool attributed = counted.Count > 0 && counted.All(Attributed);

        yield return Field("gc_pause_p50_ms", At(pauses, 0.50));
        yield return Field("gc_pause_p99_ms", At(pauses, 0.99));
        yield return Field("gc_pause_max_ms", pauses.Length == 0 ? 0 : pauses[^1]);
        if (gates.Length > 0)
        {
            // Only where the nodes share the coordinator's clock (one host), and the silos report their times.
            yield return Field("gc_pause_gates_p50_ms", At(gates, 0.50));
            yield return Field("gc_pause_gates_p99_ms", At(gates, 0.99));
            yield return Field("gc_pause_gates_max_ms", gates[^1]);
        }

        yield return Field("gc_sweep_ms", Median(parts, c => c.SweepMs));
        yield return Field("gc_stop_ms", Median(parts, c => c.StopMs));
        yield return Field("gc_begin_ms", Median(parts, c => c.BeginMs));
        yield return Field("gc_cut_ms", Median(parts, c => c.CutMs));
        yield return Field("gc_terminate_ms", Median(parts, c => c.TerminateMs));
        yield return Field("gc_finish_ms", Median(parts, c => c.FinishMs));
        yield return Field("gc_rounds", Median(parts, c => c.Rounds));
        if (attributed)
        {
            yield return Field("gc_managed_gc_ms", Median(parts, c => c.ManagedGcMs));
        }

        yield return Field("gc_node_sweep_ms", Median(nodes, n => n.SweepMs));
        yield return Field("gc_node_gate_ms", Median(nodes, n => n.GateMs));
        yield return Field("gc_node_cut_ms", Median(nodes, n => n.CutMs));
        yield return Field("gc_node_begin_ms", Median(nodes, n => n.BeginMs));
        yield return Field("gc_node_terminate_ms", Median(nodes, n => n.TerminateMs));
        yield return Field("gc_node_finish_ms", Median(nodes, n => n.FinishMs));
        yield return Field("gc_node_paused_ms", Median(nodes, n => n.PausedMs));
        if (attributed)
        {
            yield return Field("gc_node_managed_gc_ms", Median(nodes, n => n.ManagedGcMs));
        }

        yield return Field("gc_node_swept_in_pause_max", nodes.Length == 0 ? 0L : nodes.Max(n => n.SweptInPause));

        if (counted.Count == 0)
        {
            yield break;
        }

        // Each round's way out and back (the shared clock's), medians over the counted cycles.
        Way[] ways = [.. counted.Select(Ways).OfType<Way>()];
        if (ways.Length > 0)
        {
            yield return Field("gc_stop_out_ms", Median(ways, w => w.StopOut));
            yield return Field("gc_stop2_out_ms", Median(ways, w => w.Stop2Out));
            yield return Field("gc_finish_out_ms", Median(ways, w => w.FinishOut));
            yield return Field("gc_finish_back_ms", Median(ways, w => w.FinishBack));
        }

        ClusterGcCycle slow = counted.Concat(paced).MaxBy(c => c.PauseMs)!;
        GcCycleParts p = slow.Parts ?? new GcCycleParts(0, 0, 0, 0, 0, 0, 0, 0);
        GcNodeParts n = Slowest(slow.PerNode) ?? new GcNodeParts(0, 0, 0, 0, 0, 0, 0, 0);
        yield return Field("gc_slowest_pause_ms", slow.PauseMs);
        if (GcPauseTimeline.ToLastGateMs(slow) is { } slowGates)
        {
            yield return Field("gc_slowest_gates_ms", slowGates);
        }

        yield return Field("gc_slowest_stop_ms", p.StopMs);
        yield return Field("gc_slowest_begin_ms", p.BeginMs);
        yield return Field("gc_slowest_cut_ms", p.CutMs);
        yield return Field("gc_slowest_terminate_ms", p.TerminateMs);
        yield return Field("gc_slowest_finish_ms", p.FinishMs);
        yield return Field("gc_slowest_rounds", p.Rounds);
        yield return Field("gc_slowest_node_gate_ms", n.GateMs);
        yield return Field("gc_slowest_node_cut_ms", n.CutMs);
        yield return Field("gc_slowest_node_begin_ms", n.BeginMs);
        yield return Field("gc_slowest_node_terminate_ms", n.TerminateMs);
        yield return Field("gc_slowest_node_finish_ms", n.FinishMs);
        yield return Field("gc_slowest_node_paused_ms", n.PausedMs);
        if (Attributed(slow))
        {
            yield return Field("gc_slowest_managed_gc_ms", p.ManagedGcMs);
            yield return Field("gc_slowest_managed_gcs", p.ManagedGcs);
            yield return Field("gc_slowest_node_managed_gc_ms", n.ManagedGcMs);
            yield return Field("gc_slowest_node_managed_gcs", n.ManagedGcs);
            yield return Field("gc_slowest_node_queued_at_stop", n.QueuedAtStop);
            yield return Field("gc_slowest_node_drained", n.Drained);
            yield return Field("gc_slowest_node_held", n.Held);
        }
        if (Ways(slow) is { } w)
        {
            yield return Field("gc_slowest_stop_out_ms", w.StopOut);
            yield return Field("gc_slowest_stop2_out_ms", w.Stop2Out);
            yield return Field("gc_slowest_finish_out_ms", w.FinishOut);
            yield return Field("gc_slowest_finish_back_ms", w.FinishBack);
        }

        yield return new("gc_slowest_per_node", string.Join("; ", slow.PerNode.Select(n => PerNode(n, slow.Parts?.Times))));
    }

    /// <summary>
    /// The slowest cycle's rounds on the shared clock, in ms: from the coordinator sending a round to the last node it
    /// reached (out), and from the last gate opening to the coordinator having every reply (back).
    /// </summary>
    private static Way? Ways(ClusterGcCycle cycle)
    {
        if (GcPauseTimeline.OnOneClock(cycle) is not { } t)
        {
            return null;
        }

        GcCycleTimes c = cycle.Parts!.Times!;

        static double Ms(long fromUs, long toUs) => fromUs == 0 || toUs == 0 ? 0 : Math.Round((toUs - fromUs) / 1000.0, 3);
        return new Way(Ms(c.StopAtUs, t.Max(x => x.StopAtUs)), Ms(c.Stop2AtUs, t.Max(x => x.Stop2AtUs)), Ms(c.FinishAtUs, t.Max(x => x.FinishAtUs)),
            Ms(t.Max(x => x.OpenedAtUs), c.EndAtUs));
    }

    private readonly record struct Way(double StopOut, double Stop2Out, double FinishOut, double FinishBack);

    /// <summary>One node's part of a cycle, with each round's way out to it on the coordinator's clock when they share one.</summary>
    private static string PerNode(GcNodeCycle n, GcCycleTimes? c)
    {
        if (n.Parts is not { } p)
        {
            return $"{n.Node} -";
        }

        string outs = "";
        if (c is not null && p.Times is { } t && t.Clock == c.Clock)
        {
            static string Ms(long fromUs, long toUs) => fromUs == 0 || toUs == 0 ? "-" : ((toUs - fromUs) / 1000.0).ToString("0.###", CultureInfo.InvariantCulture);
            outs = $", out: stop {Ms(c.StopAtUs, t.StopAtUs)} stop 2 {Ms(c.Stop2AtUs, t.Stop2AtUs)} finish {Ms(c.FinishAtUs, t.FinishAtUs)} ms";
        }

        return p.Times is null
            ? string.Create(CultureInfo.InvariantCulture, $"{n.Node} gate closed {p.PausedMs:0.###} ms")
            : string.Create(CultureInfo.InvariantCulture,
                $"{n.Node} gate closed {p.PausedMs:0.###} ms (cut {p.CutMs:0.###}), .NET gc {p.ManagedGcMs:0.###} ms in {p.ManagedGcs}, queued {p.QueuedAtStop}, drained {p.Drained}, held {p.Held}{outs}");
    }

    /// <summary>
    /// True when the coordinator and every node of <paramref name="cycle"/> reported what else ran in their pause windows
    /// (the .NET collector, the queue, the gates' calls): silos that predate those fields send none, and their zeros
    /// were never measured.
    /// </summary>
    private static bool Attributed(ClusterGcCycle cycle) =>
        cycle.Parts?.Times is not null && cycle.PerNode.Length > 0 && cycle.PerNode.All(n => n.Parts?.Times is not null);

    /// <summary>
    /// Per part, the slowest node's figure in one cycle (a pause lasts as long as its slowest node); the calls its gates
    /// drained and held, summed over the nodes.
    /// </summary>
    private static GcNodeParts? Slowest(GcNodeCycle[] perNode)
    {
        GcNodeParts[] p = [.. perNode.Select(n => n.Parts).OfType<GcNodeParts>()];
        return p.Length == 0 ? null : new GcNodeParts(p.Max(x => x.SweepMs), p.Max(x => x.SweptBeforeStop), p.Max(x => x.GateMs), p.Max(x => x.BeginMs),
            p.Max(x => x.SweptInPause), p.Max(x => x.TerminateMs), p.Max(x => x.FinishMs), p.Max(x => x.PausedMs),
            p.Max(x => x.ManagedGcMs), p.Max(x => x.ManagedGcs), p.Max(x => x.QueuedAtStop), p.Sum(x => x.Drained), p.Sum(x => x.Held),
            CutMs: p.Max(x => x.CutMs));
    }

    /// <summary>The median of <paramref name="items"/>' figures (the lower one of an even count), rounded to µs.</summary>
    public static double Median<T>(T[] items, Func<T, double> f)
    {
        if (items.Length == 0)
        {
            return 0;
        }

        double[] v = [.. items.Select(f).Order()];
        return Math.Round(v[(v.Length - 1) / 2], 3);
    }

    private static double At(double[] sorted, double q) =>
        sorted.Length == 0 ? 0 : Math.Round(sorted[Math.Min(sorted.Length - 1, (int)Math.Ceiling(q * sorted.Length) - 1)], 3);

    private static KeyValuePair<string, object> Field(string key, double value) => new(key, Math.Round(value, 3));

    private static KeyValuePair<string, object> Field(string key, long value) => new(key, value);
}
