using Orleans.Concurrency;
using Orleans.Runtime;

namespace ClusterHeap.Contracts;

/// <summary>
/// One node's part in the cluster collector (docs/DESIGN.md §12), keyed by the node name and pinned to it: the
/// client roots this node's heap holds, and the steps of a cycle the central heap coordinates — stop the mutators,
/// mark from the roots, take foreign marks from other nodes (one-way batches, node to node), report the mark counters,
/// then finish (sweep) or abort (sweep nothing).
/// </summary>
[Alias("ClusterHeap.IGcNodeGrain")]
public interface IGcNodeGrain : IGrainWithStringKey
{
    /// <summary>Roots <paramref name="pointers"/> (objects of this node) for <paramref name="client"/> (a connection's grain id, ClientLease.Client).</summary>
    [Alias("AddRoots")]
    Task AddRootsAsync(GrainId client, [Immutable] HeapPointer[] pointers);

    /// <summary>Releases <paramref name="client"/>'s roots of <paramref name="pointers"/>; returns how many it held.</summary>
    [Alias("ReleaseRoots")]
    Task<int> ReleaseRootsAsync(GrainId client, [Immutable] HeapPointer[] pointers);

    /// <summary>
    /// Stores <paramref name="target"/> (a client pointer, or <see cref="HeapPointer.Null"/> to clear) into the word at
    /// <paramref name="word"/>, which must be 8-byte aligned, inside a live object of this node, and a pointer word per the
    /// heap bitmap: a pointer stored in a scalar word would keep nothing alive, so that is refused.
    /// </summary>
    [Alias("Link")]
    Task LinkAsync(HeapPointer word, HeapPointer target);

    /// <summary>How many roots <paramref name="client"/> holds on this node.</summary>
    [Alias("CountRoots")]
    Task<int> CountRootsAsync(GrainId client);

    /// <summary>Finishes the last cycle's sweep here (Go's finishsweep_m) and returns the heap's live object count (HeapObjects).</summary>
    [AlwaysInterleave, Alias("FinishSweep")]
    Task<long> FinishSweepAsync();

    // ---- a cycle, called by the coordinator (the central heap) ----
    // Always interleaved: a client's root call waits at the node's gate inside this grain's turn while the world is
    // stopped; the cycle's steps must run past it. Each step's work is synchronous; only the stop awaits (the drain).

    /// <summary>
    /// Before the first stop of <paramref name="cycle"/>, the mutators running: finishes the last cycle's sweep (Go's
    /// gcStart), so that the pause sweeps nothing. Returns the spans it swept.
    /// </summary>
    [AlwaysInterleave, Alias("SweepBeforeStop")]
    Task<long> SweepBeforeStopAsync(long cycle);

    /// <summary>
    /// Concurrent mode, this node's cut (pause 1, its own): <see cref="StopWorldAsync"/>, <see cref="BeginMarkAsync"/>
    /// (roots shaded as a snapshot, barrier on, allocation born marked), then the gate opens again at once — without
    /// waiting for the other nodes' cuts (docs/DESIGN.md §12, "The cut"). Other nodes may cut before this one stops:
    /// their batches wait for its begin.
    /// </summary>
    [AlwaysInterleave, Alias("StopAndBegin")]
    Task<GcMarkCounters> StopAndBeginAsync(GcMarkPlan plan, SiloAddress coordinator);

    /// <summary>Concurrent mode, pause 2 in one call: <see cref="StopWorldAsync"/>, then a <see cref="TerminateAsync"/> step.</summary>
    [AlwaysInterleave, Alias("StopAndTerminate")]
    Task<GcMarkCounters> StopAndTerminateAsync(long cycle, SiloAddress coordinator);

    /// <summary>Closes the gate to clients' mallocs, frees and writes and waits until none is in flight.</summary>
    [AlwaysInterleave, Alias("StopWorld")]
    Task StopWorldAsync(long cycle, SiloAddress coordinator);

    /// <summary>Opens a mark session, drops expired clients' roots, marks from the roots and sends foreign marks on.</summary>
    [AlwaysInterleave, Alias("BeginMark")]
    Task<GcMarkCounters> BeginMarkAsync(GcMarkPlan plan);

    /// <summary>Concurrent mode: one slice of mark work beside the mutators; foreign marks sent on. Done = ran dry.</summary>
    [AlwaysInterleave, Alias("MarkStep")]
    Task<GcMarkCounters> MarkStepAsync(long cycle);

    /// <summary>Concurrent mode, world stopped again: drain the barrier's queue and every grey object. Done = nothing left.</summary>
    [AlwaysInterleave, Alias("Terminate")]
    Task<GcMarkCounters> TerminateAsync(long cycle);

    /// <summary>Foreign marks from another node: shaded here, and what they lead to elsewhere sent on.</summary>
    [OneWay, AlwaysInterleave, Alias("Shade")]
    Task ShadeAsync(long cycle, [Immutable] ulong[] words);

    /// <summary>The mark counters (for termination).</summary>
    [AlwaysInterleave, Alias("GetCounters")]
    Task<GcMarkCounters> GetCountersAsync(long cycle);

    /// <summary>
    /// The mark is over everywhere: sweep from this node's marks, take the next trigger, open the gate. The background
    /// sweeper waits for <see cref="SweepInBackgroundAsync"/> (or an abort); refills and reclaims sweep meanwhile.
    /// </summary>
    [AlwaysInterleave, Alias("Finish")]
    Task<GcNodeCycle> FinishAsync(long cycle, long trigger);

    /// <summary>
    /// Every node of <paramref name="cycle"/> has finished: queue the background sweeper that this node's finish held back,
    /// so that no node's sweeper took a core while other nodes still waited for their finish (or its reply).
    /// </summary>
    [OneWay, AlwaysInterleave, Alias("SweepInBackground")]
    Task SweepInBackgroundAsync(long cycle);

    /// <summary>
    /// The cycle cannot finish: drop every mark, sweep nothing, open the gate (idempotent). On a node whose finish already
    /// ran (another node's failed), start the background sweeper that finish held.
    /// </summary>
    [AlwaysInterleave, Alias("Abort")]
    Task AbortAsync(long cycle, string reason);
}
