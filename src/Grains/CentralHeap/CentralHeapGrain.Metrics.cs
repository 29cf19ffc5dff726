using ClusterHeap.Grains.Metrics;

namespace ClusterHeap.Grains.CentralHeap;

// The central heap's view for the ClusterHeap meter: after every call this activation handles (and
// once it has rebuilt on activation) it posts a snapshot to its silo's CentralHeapBoard; it withdraws
// it when it deactivates. The snapshot is built on the grain's turn, so the meter never reads the
// grain's dictionaries from another thread.
public sealed partial class CentralHeapGrain : IIncomingGrainCallFilter
{
    /// <inheritdoc/>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        try
        {
            await context.Invoke();
        }
        finally
        {
            PostView();
        }
    }

    private void PostView() => _board.Post(this, new CentralSnapshot(
        _nodes.Count,
        TotalGranted,
        _memoryLimit,
        _lastGeneration,
        [.. _nodes.Values.OrderBy(n => n.Slot).Select(n => new CentralNodeRow(n.Name, n.Slot, n.Granted))]));
}
