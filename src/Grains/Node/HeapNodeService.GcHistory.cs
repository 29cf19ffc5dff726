namespace ClusterHeap.Grains.Node;

// The cluster collector's history on this node that a new central heap activation rebuilds from (NodeState): the
// newest cycle id this node's gc grain stopped for or aborted. Cycle ids are the coordinator's, and a node refuses a
// stop of a cycle at or below one it aborted (GcNodeGrain), so a coordinator that moved to a silo whose clock is behind
// starts its ids past this instead of trusting its clock. (The node heap's own NumGC is the other half: its LastCycle.)
public sealed partial class HeapNodeService
{
    private long _lastGcCycle;   // only grows; written by the gc grain, read by GetState

    /// <summary>The newest cycle id this node's gc grain stopped for or aborted, 0 when none.</summary>
    public long LastGcCycle => Interlocked.Read(ref _lastGcCycle);

    /// <summary>Records that this node's gc grain saw <paramref name="cycle"/> (stopped for it or aborted it).</summary>
    public void SawGcCycle(long cycle)
    {
        long seen = Interlocked.Read(ref _lastGcCycle);
        while (cycle > seen)
        {
            long was = Interlocked.CompareExchange(ref _lastGcCycle, cycle, seen);
            if (was == seen)
            {
                return;
            }

            seen = was;
        }
    }
}
