using Orleans.Concurrency;

namespace ClusterHeap.Contracts;

/// <summary>
/// The cluster collector's coordinator: the central heap grain (key 0, <see cref="GrainKeys.CentralHeap"/>) under a second
/// interface (docs/DESIGN.md §12). Its calls interleave with the central heap's others, so a cycle that waits for a
/// node never holds up the grants and leases an in-flight malloc needs to finish.
/// </summary>
[Alias("ClusterHeap.ICentralGcGrain")]
public interface ICentralGcGrain : IGrainWithIntegerKey
{
    /// <summary>Runs a cycle now (or joins the one running) and returns its figures; throws if it aborted.</summary>
    [AlwaysInterleave, Alias("Collect")]
    Task<ClusterGcCycle> CollectAsync();

    /// <summary>A node's shouldhelpgc point: its heap reached its share of the goal; a cycle starts unless one runs.</summary>
    [AlwaysInterleave, OneWay, Alias("RequestCycle")]
    Task RequestCycleAsync(string node);

    /// <summary>Completes when a cycle numbered above <paramref name="number"/> finished (or at once if one has).</summary>
    [AlwaysInterleave, Alias("WaitForCycle")]
    Task<ClusterGcCycle> WaitForCycleAsync(long number);

    /// <summary>Settings, pacer, counts and the recent traces.</summary>
    [AlwaysInterleave, Alias("GetGcStatus")]
    Task<ClusterGcStatus> GetGcStatusAsync();

    /// <summary>GOGC for the cluster (negative = off).</summary>
    [AlwaysInterleave, Alias("SetGcPercent")]
    Task SetGcPercentAsync(int percent);

    /// <summary>How the next cycles run (stop-the-world or concurrent).</summary>
    [AlwaysInterleave, Alias("SetGcMode")]
    Task SetGcModeAsync(GcMode mode);

    /// <summary>
    /// The calling client's connection renews its lease on its roots (one call per client, whatever the nodes). The
    /// client is the call's source (its connection's grain id), returned in the lease; only a client may call it.
    /// </summary>
    [AlwaysInterleave, Alias("RenewClient")]
    Task<ClientLease> RenewClientAsync();

    /// <summary>The calling client closes: its roots go at the next cycle.</summary>
    [AlwaysInterleave, Alias("EndClient")]
    Task EndClientAsync();
}
