using Orleans.Runtime;

namespace ClusterHeap.Contracts;

// Types the cluster tier passes between the central heap grain, the heap node grains and the
// mcache grains: node registration, growth grants and span leases (docs/DESIGN.md §5).

/// <summary>
/// A live node as the central heap knows it; clients route pointers by <see cref="Slot"/>. <see cref="Procs"/>
/// is its P (mcache grains <c>Name/0</c> .. <c>Name/(Procs-1)</c>) and <see cref="ArenaSize"/> its arena's size.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodeInfo")]
public sealed record NodeInfo(
    [property: Id(0)] string Name,
    [property: Id(1)] int Slot,
    [property: Id(2)] ushort Generation,
    [property: Id(3)] SiloAddress Silo,
    [property: Id(4)] long Granted,
    [property: Id(5)] int Procs,
    [property: Id(6)] long ArenaSize);

/// <summary>A silo asking for a slot; <see cref="ExcludedSlots"/> are slots whose hint address it could not reserve.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodeRegistration")]
public sealed record NodeRegistration(
    [property: Id(0)] string Name,
    [property: Id(1)] SiloAddress Silo,
    [property: Id(2)] long ArenaSize,
    [property: Id(3)] int[] ExcludedSlots,
    [property: Id(4)] int Procs);

/// <summary>The central heap's answer: the slot, its new generation and the first growth grant.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodeAssignment")]
public sealed record NodeAssignment(
    [property: Id(0)] int Slot,
    [property: Id(1)] ushort Generation,
    [property: Id(2)] long Granted);

/// <summary>
/// A lease's identity, cluster-wide: the lender (its slot and generation) and the lender heap's own number for the
/// lease (NodeHeap's SpanLease.LeaseId, 1, 2, … per heap; it encodes nothing else).
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.LeaseKey")]
public readonly record struct LeaseKey(
    [property: Id(0)] int LenderSlot,
    [property: Id(1)] ushort LenderGeneration,
    [property: Id(2)] long LeaseId)
{
    /// <inheritdoc/>
    public override string ToString() => $"lease {LeaseId}@slot{LenderSlot}g{LenderGeneration}";
}

/// <summary>
/// A span lent by one node to another node's mcache. Its objects live in the lender's arena (the
/// pointers carry the lender's generation); bit i of <see cref="FreeSlots"/> = slot i is the lessee's
/// to hand out, already allocated and zeroed on the lender's side.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.SpanLeaseInfo")]
public sealed record SpanLeaseInfo(
    [property: Id(0)] LeaseKey Key,
    [property: Id(1)] string LenderNode,
    [property: Id(2)] int SpanClass,
    [property: Id(3)] ulong SpanBase,
    [property: Id(4)] int ElemSize,
    [property: Id(5)] int Objects,
    [property: Id(6)] ulong[] FreeSlots);

/// <summary>A lease as one side reports it (the lender from its heap's lease table, the lessee from its held leases).</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.LeaseRecord")]
public sealed record LeaseRecord(
    [property: Id(0)] LeaseKey Key,
    [property: Id(1)] string LenderNode,
    [property: Id(2)] string LesseeNode,
    [property: Id(3)] int SpanClass,
    [property: Id(4)] ushort LesseeGeneration);

/// <summary>
/// What a heap node grain reports so a fresh central heap activation can rebuild its view. <see cref="NumGC"/> is the
/// cluster cycles this node's heap finished (its MemStats.NumGC); <see cref="LastGcCycle"/> the newest cycle id its gc
/// grain stopped for or aborted (a new coordinator's ids start past every node's: a node refuses a stop of a cycle at or
/// below one it aborted).
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodeState")]
public sealed record NodeState(
    [property: Id(0)] string Name,
    [property: Id(1)] SiloAddress Silo,
    [property: Id(2)] bool Assigned,
    [property: Id(3)] int Slot,
    [property: Id(4)] ushort Generation,
    [property: Id(5)] long Granted,
    [property: Id(6)] CentralNote Note,
    [property: Id(7)] LeaseRecord[] LeasesLent,
    [property: Id(8)] LeaseRecord[] LeasesHeld,
    [property: Id(9)] long ArenaSize,
    [property: Id(10)] int Procs,
    [property: Id(11)] long NumGC,
    [property: Id(12)] long LastGcCycle);

/// <summary>A growth request's answer: the node's new growth limit (already applied on the node by the central heap), or the reason there is none.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GrowthGrant")]
public sealed record GrowthGrant(
    [property: Id(0)] bool Granted,
    [property: Id(1)] long GrowthLimit,
    [property: Id(2)] HeapError? Error);

/// <summary>A lease request's answer: the lease, or the out-of-memory error saying why none exists.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.LeaseReply")]
public sealed record LeaseReply(
    [property: Id(0)] SpanLeaseInfo? Lease,
    [property: Id(1)] HeapError? Error);

/// <summary>A large-object request's answer: the object (on another node), or the out-of-memory error saying why none exists.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.LargeReply")]
public sealed record LargeReply(
    [property: Id(0)] HeapPointer? Pointer,
    [property: Id(1)] HeapError? Error);

/// <summary>The central heap's whole view (for the shell and for tests that compare it across a failover).</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.CentralView")]
public sealed record CentralView(
    [property: Id(0)] NodeInfo[] Nodes,
    [property: Id(1)] LeaseRecord[] Leases,
    [property: Id(2)] long MemoryLimit,
    [property: Id(3)] long TotalGranted,
    [property: Id(4)] ushort LastGeneration,
    [property: Id(5)] SiloAddress? HostSilo);

/// <summary>One mcache grain's counters.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.MCacheInfo")]
public sealed record MCacheInfo(
    [property: Id(0)] string Key,
    [property: Id(1)] string Node,
    [property: Id(2)] int P,
    [property: Id(3)] long Mallocs,
    [property: Id(4)] long LeasedMallocs,
    [property: Id(5)] int LeasesHeld,
    [property: Id(6)] long LeasesTaken,
    [property: Id(7)] long GrantsAsked);

/// <summary>
/// The central heap's facts that must outlive its activation: the last generation handed out (so a
/// rebuilt central heap never reuses one for a slot) and the memory limit set at run time. Every
/// node keeps the copy with the highest <see cref="Version"/>.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.CentralNote")]
public sealed record CentralNote(
    [property: Id(0)] long Version,
    [property: Id(1)] ushort LastGeneration,
    [property: Id(2)] long MemoryLimit);
