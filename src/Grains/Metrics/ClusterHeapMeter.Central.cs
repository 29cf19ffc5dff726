using System.Diagnostics.Metrics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Metrics;

// The central heap's view in the ClusterHeap meter: nodes, slots, grants and the cluster limit, and the cluster
// collector as the central heap coordinates it (CentralHeapGrain.Gc.cs): cycles completed and aborted, the last
// cycle's pauses and phases, the cluster heap goal and marked bytes, GOGC, clients holding root leases. Only the
// silo hosting the central heap's activation has a snapshot on its CentralHeapBoard, so only it reports these (a
// scrape of every silo counts them once), tagged with its own node. Names under clusterheap.central.gc.* follow
// Go's runtime/metrics as the node heap's clusterheap.gc.* do (clusterheap.central.gc.cycles.total is
// /gc/cycles/total:gc-cycles over the cluster), so a dashboard puts the two side by side.
public sealed partial class ClusterHeapMeter
{
    /// <summary>Bucket bounds of <c>clusterheap.central.gc.pauses</c>, in seconds: 100 µs to 10 s (a cluster pause waits on every node).</summary>
    private static readonly double[] CentralPauseBuckets = [1e-4, 2.5e-4, 5e-4, 1e-3, 2.5e-3, 5e-3, 1e-2, 2.5e-2, 5e-2, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    private readonly Lock _centralPausesLock = new();
    private Histogram<double> _centralPauses = null!;   // set by CentralGcInstruments
    private long _centralPausesActivation;              // CentralGcView.Activation of the cycles below; _centralPausesLock
    private long _centralPausesRecorded;                // number of the last cycle whose pauses went into _centralPauses; _centralPausesLock

    private void CentralInstruments()
    {
        _meter.CreateObservableGauge("clusterheap.gc.gomemlimit", () => Central(static c => c.MemoryLimit), "By",
            "The cluster memory limit all growth grants stay under (Go /gc/gomemlimit:bytes; 9223372036854775807 = none). Reported by the silo hosting the central heap.");
        _meter.CreateObservableUpDownCounter("clusterheap.central.granted", () => Central(static c => c.TotalGranted), "By",
            "Bytes granted to all live nodes, as the central heap counts them.");
        _meter.CreateObservableUpDownCounter("clusterheap.central.nodes", () => Central(static c => c.Nodes), "{node}",
            "Live nodes (slots assigned) the central heap knows.");
        _meter.CreateObservableGauge("clusterheap.central.generation", () => Central(static c => c.LastGeneration), "{generation}",
            "The last slot generation the central heap handed out.");
        _meter.CreateObservableUpDownCounter("clusterheap.central.node.granted", CentralPerNode, "By",
            "Bytes granted to each live node as the central heap counts them, tagged node and slot of the granted node.");
        CentralGcInstruments();
    }

    private void CentralGcInstruments()
    {
        _meter.CreateObservableCounter("clusterheap.central.gc.cycles.total", () => Central(static c => c.Gc.Cycles), "{gc-cycle}",
            "Cluster cycles completed, as the central heap counts them (Go /gc/cycles/total:gc-cycles over the cluster; `clusterheap gc --log --json` numGc).");
        _meter.CreateObservableCounter("clusterheap.central.gc.cycles.aborted", () => Central(static c => c.Gc.Aborted), "{gc-cycle}",
            "Cluster cycle attempts that aborted (a node left, a call failed or timed out); nothing was swept (`clusterheap gc --log --json` aborted).");
        _meter.CreateObservableUpDownCounter("clusterheap.central.gc.heap.goal", () => Central(static c => c.Gc.Goal), "By",
            "The cluster heap goal: Σ marked × (1 + GOGC/100), under the memory limit (Go /gc/heap/goal:bytes; 9223372036854775807 = none, GOGC off).");
        _meter.CreateObservableUpDownCounter("clusterheap.central.gc.heap.live", () => Central(static c => c.Gc.Marked), "By",
            "Bytes the last cluster cycle marked on every node (Go /gc/heap/live:bytes over the cluster).");
        _meter.CreateObservableGauge("clusterheap.central.gc.gogc", () => Central(static c => c.Gc.GcPercent), "%",
            "GOGC of the cluster pacer (Go /gc/gogc:percent; -1 = off).");
        _meter.CreateObservableUpDownCounter("clusterheap.central.gc.clients", () => Central(static c => c.Gc.LiveClients), "{client}",
            "Clients holding a live root lease: their roots keep objects alive across cycles.");
        _meter.CreateObservableCounter("clusterheap.central.gc.pause", () => CentralDouble(static c => c.Gc.PauseTotalSeconds), "s",
            "The time every cluster cycle kept the mutators stopped, summed.");
        _meter.CreateObservableGauge("clusterheap.central.gc.last.pause", LastCyclePauses, "s",
            "The last cluster cycle's pauses, tagged pause: stw (stop + mark + restart of a stop-the-world cycle), or 1 (stop and begin marking) and 2 (mark termination and finish) of a concurrent one.");
        _meter.CreateObservableGauge("clusterheap.central.gc.last.phase", LastCyclePhases, "s",
            "The last cluster cycle's wall-clock phases as its gctrace line prints them, tagged phase: stop, mark, restart (the mark runs beside the mutators in a concurrent cycle).");
        _centralPauses = _meter.CreateHistogram("clusterheap.central.gc.pauses", "s",
            "Each cluster cycle's pauses, tagged pause as clusterheap.central.gc.last.pause (Go /gc/pauses:seconds over the cluster), recorded when a collection first sees the cycle.",
            advice: new InstrumentAdvice<double> { HistogramBucketBoundaries = CentralPauseBuckets });
    }

    private IEnumerable<Measurement<long>> Central(Func<CentralSnapshot, long> value) =>
        CentralNow() is { } c ? [new Measurement<long>(value(c), HostTag())] : [];

    private IEnumerable<Measurement<double>> CentralDouble(Func<CentralSnapshot, double> value) =>
        CentralNow() is { } c ? [new Measurement<double>(value(c), HostTag())] : [];

    private IEnumerable<Measurement<long>> CentralPerNode() =>
        _central.Current is { } c
            ? c.PerNode.Select(n => new Measurement<long>(n.Granted, new("node", n.Node), new("slot", n.Slot))).ToArray()
            : [];

    private IEnumerable<Measurement<double>> LastCyclePauses() =>
        CentralNow()?.Gc.Last is { } last ? Pauses(last).Select(p => new Measurement<double>(p.Seconds, HostTag(), new("pause", p.Pause))).ToArray() : [];

    private IEnumerable<Measurement<double>> LastCyclePhases() =>
        CentralNow()?.Gc.Last is { } last
            ? [new(last.StopMs / 1000, HostTag(), new("phase", "stop")),
               new(last.MarkMs / 1000, HostTag(), new("phase", "mark")),
               new(last.RestartMs / 1000, HostTag(), new("phase", "restart"))]
            : [];

    /// <summary>A cycle's pauses: one for stop-the-world, two for concurrent (<see cref="ClusterGcCycle.PauseMs"/> is their sum).</summary>
    private static (string Pause, double Seconds)[] Pauses(ClusterGcCycle c) =>
        c.Mode == GcMode.Concurrent
            ? [("1", c.StopMs / 1000), ("2", c.RestartMs / 1000)]
            : [("stw", (c.StopMs + c.MarkMs + c.RestartMs) / 1000)];

    private KeyValuePair<string, object?> HostTag() => new("node", _node.Name);

    /// <summary>This silo's central snapshot (null unless it hosts the central heap), its new cycles' pauses recorded first.</summary>
    private CentralSnapshot? CentralNow()
    {
        if (_central.Current is not { } c || !_node.Assigned)
        {
            return null;
        }

        RecordNewCentralPauses(c.Gc);
        return c;
    }

    /// <summary>
    /// Records into <c>clusterheap.central.gc.pauses</c> the pauses of the cycles no collection has seen yet: the view keeps
    /// the last 64, so a collection more than 64 cycles after the one before records only those. A new activation of the
    /// central heap numbers its cycles from 1 again.
    /// </summary>
    private void RecordNewCentralPauses(CentralGcView gc)
    {
        lock (_centralPausesLock)
        {
            if (gc.Activation != _centralPausesActivation)
            {
                _centralPausesActivation = gc.Activation;
                _centralPausesRecorded = 0;
            }

            foreach (ClusterGcCycle cycle in gc.Recent)
            {
                if (cycle.Number > _centralPausesRecorded)
                {
                    foreach ((string pause, double seconds) in Pauses(cycle))
                    {
                        _centralPauses.Record(seconds, HostTag(), new("pause", pause));
                    }

                    _centralPausesRecorded = cycle.Number;
                }
            }
        }
    }
}
