using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.CentralHeap;

// The collector's history a new activation rebuilds from the live nodes (NodeState), since it keeps none of its own.
//   cycle ids  Past the newest id any node stopped for or aborted: a node refuses a stop of a cycle at or below one it
//              aborted, so ids taken from this silo's clock alone (behind the old silo's: another host, a clock stepped
//              back) were refused until the clock caught up. Within one activation ids only grow (_lastCycleId + 1).
//   NumGC      The largest count of cycles a live node's heap finished (its MemStats.NumGC): a completed cycle finished
//              on every node it ran over (one whose restart failed part-way counts on some only: numbers may be skipped,
//              never reused), so the count carries on past the last cycle the survivors took part in and never restarts
//              at 1. It falls short of the old count only if no survivor took part in every cycle (all joined after the
//              first), and then it carries on from the longest-lived survivor's count.
public sealed partial class CentralHeapGrain
{
    private void RebuildGcHistory(NodeState[] live)
    {
        _lastCycleId = Math.Max(_lastCycleId, live.Select(s => s.LastGcCycle).DefaultIfEmpty(0).Max());
        _numGc = Math.Max(_numGc, live.Select(s => s.NumGC).DefaultIfEmpty(0).Max());
    }
}
