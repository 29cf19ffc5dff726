using ClusterHeap.Contracts;
using ClusterHeap.Grains.Metrics;

namespace ClusterHeap.Grains.CentralHeap;

// The central heap's view for the ClusterHeap meter: after every call this activation handles (and
// once it has rebuilt on activation) it posts a snapshot to its silo's CentralHeapBoard; it withdraws
// it when it deactivates. A cycle the pacer started ends after the call that started it returned, so
// the activation posts again when that cycle ends. The snapshot is built on the grain's turn, so the
// meter never reads the grain's dictionaries from another thread. The collector's figures are read
// from what CentralHeapGrain.Gc.cs keeps, never changed here.
public sealed partial class CentralHeapGrain : IIncomingGrainCallFilter
{
    private Task? _watchedCycle;                             // the running cycle whose end posts a view (grain turn only)
    private ClusterGcCycle[] _postedRecent = [];             // _recentCycles as of _postedCycles completed cycles
    private long _postedCycles;                              // _numGc when _postedRecent was copied

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
            PostWhenCycleEnds();
        }
    }

    private void PostView() => _board.Post(this, new CentralSnapshot(
        _nodes.Count,
        TotalGranted,
        _memoryLimit,
        _lastGeneration,
        [.. _nodes.Values.OrderBy(n => n.Slot).Select(n => new CentralNodeRow(n.Name, n.Slot, n.Granted))],
        GcView()));

    private CentralGcView GcView()
    {
        if (_postedCycles != _numGc)
        {
            _postedRecent = [.. _recentCycles];
            _postedCycles = _numGc;
        }

        DateTime now = DateTime.UtcNow;
        return new CentralGcView(_gcStartTicks, GcPercent, GcGoal, _gcMarked, _numGc, _gcAborted, _gcPauseMs / 1000,
            _clientLeases.Values.Count(expires => expires >= now), _postedRecent);
    }

    /// <summary>
    /// A run of cycles still going when a call ends (the pacer's, started by RequestCycleAsync) posts the view once it is
    /// over, and watches the run that may have started as it ended.
    /// </summary>
    private void PostWhenCycleEnds()
    {
        if (_running is { IsCompleted: false } cycle && !ReferenceEquals(cycle, _watchedCycle))
        {
            _watchedCycle = cycle;
            _ = cycle.ContinueWith(static (_, state) =>
            {
                var grain = (CentralHeapGrain)state!;
                grain.PostView();
                grain.PostWhenCycleEnds();
            }, this, CancellationToken.None, TaskContinuationOptions.None, TaskScheduler.Current);   // the activation's scheduler: a grain turn
        }
    }
}
