using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// Waits for membership to say that one of a cycle's silos is gone (docs/DESIGN.md §12, "Abort"). Both ends of a cycle
/// use it: the coordinator (ClusterCycleRunner) fails the step it is in the moment a node's silo leaves, instead of
/// waiting for the node's call to time out, and each stopped node (GcNode's watchdog) aborts its own part when any silo
/// of the cycle dies, whether or not the coordinator's abort reaches it. A silo killed without warning is declared Dead
/// by the others' probes (ClusterHeapOptions.ProbeTimeout × 2 missed probes); that declaration is also the moment
/// Orleans fails the calls still waiting on the dead silo, so nothing in a cycle waits on it beyond it.
/// </summary>
internal static class SiloDeparture
{
    /// <summary>A status in which a silo takes no further part in a cycle.</summary>
    public static bool IsGone(SiloStatus status) => status is SiloStatus.Dead or SiloStatus.ShuttingDown or SiloStatus.Stopping;

    /// <summary>
    /// Completes with the first of <paramref name="silos"/> that membership shows gone (and its status), now or later;
    /// never completes while all stay, until <paramref name="cancellation"/> (then it throws OperationCanceledException).
    /// </summary>
    public static async Task<(SiloAddress Silo, SiloStatus Status)> FirstGoneAsync(IClusterMembershipService membership,
        IReadOnlyCollection<SiloAddress> silos, CancellationToken cancellation)
    {
        if (FirstGone(membership.CurrentSnapshot, silos) is { } now)
        {
            return now;
        }

        await foreach (ClusterMembershipSnapshot snapshot in membership.MembershipUpdates.WithCancellation(cancellation))
        {
            if (FirstGone(snapshot, silos) is { } gone)
            {
                return gone;
            }
        }

        cancellation.ThrowIfCancellationRequested();
        throw new InvalidOperationException("membership updates ended while the silo was still listed");
    }

    private static (SiloAddress, SiloStatus)? FirstGone(ClusterMembershipSnapshot snapshot, IReadOnlyCollection<SiloAddress> silos)
    {
        foreach (SiloAddress s in silos)
        {
            SiloStatus status = snapshot.GetSiloStatus(s);
            if (IsGone(status))
            {
                return (s, status);
            }
        }

        return null;
    }
}
