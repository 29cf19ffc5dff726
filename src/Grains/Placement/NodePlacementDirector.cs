using ClusterHeap.Contracts;
using Orleans.Runtime;
using Orleans.Runtime.Placement;

namespace ClusterHeap.Grains.Placement;

/// <summary>
/// Picks the active silo named by the grain key (names, not indexes: indexes shift with
/// membership). Runs on the calling silo or the client's gateway, only when no activation exists.
/// Restarted silos reuse names, so only an <see cref="SiloStatus.Active"/> member counts.
/// </summary>
internal sealed class NodePlacementDirector(IClusterMembershipService membership) : IPlacementDirector
{
    private readonly IClusterMembershipService _membership = membership;

    public Task<SiloAddress> OnAddActivation(PlacementStrategy strategy, PlacementTarget target, IPlacementContext context)
    {
        string node = GrainKeys.NodeOf(target.GrainIdentity.Key.ToString() ?? "");
        SiloAddress[] compatible = context.GetCompatibleSilos(target);
        foreach (ClusterMember member in _membership.CurrentSnapshot.Members.Values)
        {
            if (member.Status == SiloStatus.Active && member.Name == node && compatible.Contains(member.SiloAddress))
            {
                return Task.FromResult(member.SiloAddress);
            }
        }

        throw HeapError.NodeNotActive(node).ToException();
    }
}
