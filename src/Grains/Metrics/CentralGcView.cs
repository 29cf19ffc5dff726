using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Metrics;

/// <summary>
/// The cluster collector as the central heap counts it (CentralHeapGrain.Gc.cs), for the meter: the figures
/// <c>clusterheap gc --log --json</c> prints, taken on the grain's turn. Immutable, as <see cref="CentralSnapshot"/>.
/// </summary>
/// <param name="Activation">Which activation counted these: cycle numbers start again at 1 in a new one.</param>
/// <param name="GcPercent">GOGC over the cluster (-1 = off).</param>
/// <param name="Goal">The cluster heap goal, Σ marked × (1 + GOGC/100) under the memory limit (<see cref="long.MaxValue"/> = none).</param>
/// <param name="Marked">Bytes the last cycle marked on every node.</param>
/// <param name="Cycles">Cluster cycles completed by this activation (the last one's <see cref="ClusterGcCycle.Number"/>).</param>
/// <param name="Aborted">Cycle attempts that aborted (a node left, a call failed); each retry that completes also counts in <see cref="Cycles"/>.</param>
/// <param name="PauseTotalSeconds">Σ of every completed cycle's <see cref="ClusterGcCycle.PauseMs"/>, in seconds.</param>
/// <param name="LiveClients">Clients whose root lease has not run out.</param>
/// <param name="Recent">The last cycles, oldest first (at most the grain's 64); the last is the last cycle.</param>
public sealed record CentralGcView(
    long Activation,
    int GcPercent,
    long Goal,
    long Marked,
    long Cycles,
    long Aborted,
    double PauseTotalSeconds,
    int LiveClients,
    IReadOnlyList<ClusterGcCycle> Recent)
{
    /// <summary>The last completed cycle, or null before the first.</summary>
    public ClusterGcCycle? Last => Recent.Count > 0 ? Recent[^1] : null;
}
