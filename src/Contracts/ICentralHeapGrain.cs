using Orleans.Runtime;

namespace ClusterHeap.Contracts;

/// <summary>
/// The cluster tier above the node heaps (docs/DESIGN.md §5), one per cluster (key 0,
/// <see cref="GrainKeys.CentralHeap"/>): slot and generation assignment, growth grants under the cluster
/// memory limit, cross-node span leases, cluster stats, and reclamation of dead nodes. It keeps no
/// storage: each activation rebuilds its view from the live heap node grains.
/// </summary>
[Alias("ClusterHeap.ICentralHeapGrain")]
public interface ICentralHeapGrain : IGrainWithIntegerKey
{
    /// <summary>A node's silo started: assign a free slot (not in ExcludedSlots) and a fresh generation.</summary>
    [Alias("RegisterNode")]
    Task<NodeAssignment> RegisterNodeAsync(NodeRegistration registration);

    /// <summary>Live nodes, by slot.</summary>
    [Alias("GetNodes")]
    Task<NodeInfo[]> GetNodesAsync();

    /// <summary>A node hit its growth limit: grant at least <paramref name="bytes"/> more, in chunks, under the cluster limit.</summary>
    [Alias("RequestGrowth")]
    Task<GrowthGrant> RequestGrowthAsync(string node, ushort generation, long bytes);

    /// <summary>A node cannot refill <paramref name="spanClass"/>: find a node that can and have it lend a span.</summary>
    [Alias("RequestLease")]
    Task<LeaseReply> RequestLeaseAsync(string lesseeNode, ushort lesseeGeneration, int spanClass);

    /// <summary>A lessee is done with a lease: forward to the lender (the central heap keeps no lease record).</summary>
    [Alias("ReturnLease")]
    Task ReturnLeaseAsync(LeaseKey lease, [Immutable] ulong[] unusedSlots);

    /// <summary>A node cannot allocate a large object: have another node allocate it, or say why none can.</summary>
    [Alias("RequestLarge")]
    Task<LargeReply> RequestLargeAsync(string node, long size, ObjectKind kind);

    /// <summary>Membership declared <paramref name="silo"/> dead: reclaim its slot, grants and leases (idempotent).</summary>
    [Alias("NodeDied")]
    Task NodeDiedAsync(SiloAddress silo);

    /// <summary>A node leaving in good order, its leases settled by itself: reclaim its slot and grant (idempotent).</summary>
    [Alias("NodeLeft")]
    Task NodeLeftAsync(SiloAddress silo);

    /// <summary>Sum and per-node rows of every live node's stats.</summary>
    [Alias("GetStats")]
    Task<ClusterStats> GetStatsAsync();

    /// <summary>The cluster memory limit (long.MaxValue = none).</summary>
    [Alias("GetMemoryLimit")]
    Task<long> GetMemoryLimitAsync();

    /// <summary>Changes the cluster memory limit at run time; grants already made stand.</summary>
    [Alias("SetMemoryLimit")]
    Task SetMemoryLimitAsync(long bytes);

    /// <summary>The whole view: nodes, leases, limit, grants.</summary>
    [Alias("GetView")]
    Task<CentralView> GetViewAsync();

    /// <summary>The cluster invariants (Σ grants ≤ limit, unique slots, no dead owner) then every node's verifier.</summary>
    [Alias("Verify")]
    Task<VerifyResult[]> VerifyAsync();
}
