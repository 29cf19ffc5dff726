namespace ClusterHeap.Contracts;

/// <summary>
/// One node's clock parts of a cluster cycle, in milliseconds, measured on the node (docs/DESIGN.md §12, "Where a
/// pause goes"). <see cref="SweepMs"/> runs before the first stop, the mutators running; the rest is inside the pauses.
/// The fields from <see cref="ManagedGcMs"/> on say what else could have made a pause slow, measured in this node's
/// pause windows (each up to the gate's opening).
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcNodeParts")]
public sealed record GcNodeParts(
    [property: Id(0)] double SweepMs,
    [property: Id(1)] long SweptBeforeStop,
    [property: Id(2)] double GateMs,
    [property: Id(3)] double BeginMs,
    [property: Id(4)] long SweptInPause,
    [property: Id(5)] double TerminateMs,
    [property: Id(6)] double FinishMs,
    [property: Id(7)] double PausedMs,
    [property: Id(8)] double ManagedGcMs = 0,
    [property: Id(9)] long ManagedGcs = 0,
    [property: Id(10)] long QueuedAtStop = 0,
    [property: Id(11)] long Drained = 0,
    [property: Id(12)] long Held = 0,
    [property: Id(13)] GcNodeTimes? Times = null,
    [property: Id(14)] double CutMs = 0)
{
    // SweepMs: the last cycle's sweep finished before the stop (Go's gcStart), in SweptBeforeStop spans.
    // GateMs: closing the gate, for both stops: waiting for client calls in flight.
    // BeginMs: the heap's pause-1 part — sweep termination (SweptInPause spans: 0 when the sweep finished before the
    //   stop), mcache flush, the roots (concurrent: shaded as a snapshot, barrier on; stop the world: the whole local mark).
    // TerminateMs: mark termination's steps (concurrent), or the foreign batches shaded (stop the world).
    // FinishMs: barrier off, mcaches flushed, the sweep started.
    // PausedMs: this node's gate closed, in total: the longest a mutator's call on this node could wait.
    // ManagedGcMs, ManagedGcs: the .NET collector's pause time and collections in this node's process inside its pause
    //   windows (GC.GetTotalPauseDuration and GC.CollectionCount(0) deltas), each from this node's reply to the step
    //   before the stop (the stop's way in included) to the gate's opening (the finish's way in included).
    // QueuedAtStop: thread-pool work items waiting when a stop arrived (the larger of the two stops).
    // Drained: gated client calls in flight when the gate closed (the stop waited for them), both stops.
    // Held: gated client calls that arrived while the gate was closed and waited at it.
    // CutMs: concurrent mode, this node's own pause 1 — its cut: from its gate beginning to close (calls in flight
    //   draining) to its opening again, the snapshot taken and the barrier on. No node's cut waits for another's.
}

/// <summary>
/// The coordinator's clock parts of a cluster cycle, in milliseconds: each is one step's round of calls to every node
/// at once (so it includes the call round trips), in the order they run. <see cref="SweepMs"/> runs before the first
/// stop; <see cref="CutMs"/> and <see cref="MarkMs"/> (concurrent) run beside the mutators; the rest are inside the
/// pauses.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcCycleParts")]
public sealed record GcCycleParts(
    [property: Id(0)] double SweepMs,
    [property: Id(1)] double StopMs,
    [property: Id(2)] double BeginMs,
    [property: Id(11)] double CutMs,
    [property: Id(4)] double MarkMs,
    [property: Id(5)] double TerminateMs,
    [property: Id(6)] double FinishMs,
    [property: Id(7)] long Rounds,
    [property: Id(8)] double ManagedGcMs = 0,
    [property: Id(9)] long ManagedGcs = 0,
    [property: Id(10)] GcCycleTimes? Times = null)
{
    // StopMs: the stop round (concurrent mode: pause 2's, where stop + terminate are one round).
    // BeginMs: the begin-mark round (stop the world).
    // CutMs: the cut round (concurrent): every node stops, begins and resumes on its own, the others running — not a
    //   pause of the cluster; each node's own is its GcNodeParts.CutMs.
    // TerminateMs: the termination waves (stop the world: the counter waves; concurrent: pause 2's waves after the first).
    // FinishMs: the finish round. Rounds: the rounds of calls inside the cluster's pauses.
    // ManagedGcMs, ManagedGcs: the .NET collector's pause time and collections in the coordinator's process inside the
    //   pauses as the coordinator clocks them.
}
