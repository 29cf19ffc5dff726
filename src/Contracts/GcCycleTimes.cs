namespace ClusterHeap.Contracts;

/// <summary>
/// When the steps of a cluster cycle happened, on one node, in microseconds of the host's monotonic clock (Stopwatch's:
/// on Linux CLOCK_MONOTONIC, one clock for every process on the host). <see cref="Clock"/> names that clock (the
/// host's boot id): two processes' times compare only when their clocks are the same. 0 = did not happen (stop the
/// world has no resume or second stop).
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcNodeTimes")]
public sealed record GcNodeTimes(
    [property: Id(0)] string Clock,
    [property: Id(1)] long StopAtUs,
    [property: Id(2)] long ResumedAtUs,
    [property: Id(3)] long Stop2AtUs,
    [property: Id(4)] long FinishAtUs,
    [property: Id(5)] long OpenedAtUs)
{
    // StopAtUs: the (first) stop reached this node's grain. ResumedAtUs: concurrent, its cut ended: the gate opened again
    // (this node's pause 1 ends here).
    // Stop2AtUs: pause 2's stop reached the grain. FinishAtUs: the finish reached the grain. OpenedAtUs: the finish
    // opened the gate (the world runs again on this node).
}

/// <summary>
/// When the coordinator sent or got each round of a cluster cycle, on the clock <see cref="GcNodeTimes"/> uses
/// (microseconds): the first stop sent (concurrent: the cut round), pause 2's stop sent (concurrent), the finish sent
/// and its last reply in.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcCycleTimes")]
public sealed record GcCycleTimes(
    [property: Id(0)] string Clock,
    [property: Id(1)] long StopAtUs,
    [property: Id(4)] long Stop2AtUs,
    [property: Id(5)] long FinishAtUs,
    [property: Id(6)] long EndAtUs);

/// <summary>
/// A cycle's pause ended where the world runs again (docs/DESIGN.md §12, "Where a pause goes"): the coordinator clocks
/// a cluster pause (stop the world's; concurrent pause 2) from its stop to the last reply of the finish, so it includes
/// the replies' way back, which the mutators spend running. When every node shares the coordinator's clock, the same
/// pause can end at the last gate's opening instead: never earlier than the world runs again on every node, and never
/// later than the coordinator's figure. A concurrent cycle's pause 1 is no round of the coordinator's: it is the
/// longest node's own cut, as that node clocked it (ClusterGcCycle.StopMs), in both figures.
/// </summary>
public static class GcPauseTimeline
{
    /// <summary>
    /// The pause from the coordinator's stop to the last node's gate opening (concurrent: the longest cut plus pause 2
    /// so ended), in ms; null when a node or the coordinator reported no times or not on one clock.
    /// </summary>
    public static double? ToLastGateMs(ClusterGcCycle cycle)
    {
        if (OnOneClock(cycle) is not { } nodes || nodes.Any(n => n.OpenedAtUs == 0))
        {
            return null;
        }

        GcCycleTimes c = cycle.Parts!.Times!;
        long opened = nodes.Max(n => n.OpenedAtUs);
        if (cycle.Mode != GcMode.Concurrent)
        {
            return (opened - c.StopAtUs) / 1000.0;
        }

        return nodes.Any(n => n.ResumedAtUs == 0) ? null : cycle.StopMs + (opened - c.Stop2AtUs) / 1000.0;
    }

    /// <summary>
    /// Every node's times, in <paramref name="cycle"/>'s PerNode order, when the coordinator and every node reported
    /// times on one clock (they compare with the coordinator's <see cref="GcCycleTimes"/>); null otherwise.
    /// </summary>
    public static GcNodeTimes[]? OnOneClock(ClusterGcCycle cycle)
    {
        if (cycle.Parts?.Times is not { } c || cycle.PerNode.Length == 0)
        {
            return null;
        }

        GcNodeTimes[] nodes = [.. cycle.PerNode.Select(n => n.Parts?.Times).OfType<GcNodeTimes>()];
        return nodes.Length == cycle.PerNode.Length && nodes.All(n => n.Clock == c.Clock) ? nodes : null;
    }
}
