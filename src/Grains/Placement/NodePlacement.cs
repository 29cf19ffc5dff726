using Orleans.Placement;

namespace ClusterHeap.Grains.Placement;

// Pinning a grain to the silo its key names (docs/DESIGN.md §9, "Pinning a grain to a silo"): the
// strategy says "ask NodePlacementDirector", the attribute puts the strategy on a grain class.
// Keys: a heap node grain is keyed by the node name, an mcache grain by "node/P"
// (GrainKeys.NodeOf splits them).

/// <summary>Place the activation on the silo whose name the grain key starts with.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.NodePlacementStrategy")]
public sealed class NodePlacementStrategy : PlacementStrategy
{
    /// <summary>The one instance the attribute passes.</summary>
    public static NodePlacementStrategy Instance { get; } = new();
}

/// <summary>Marks a grain class as pinned to the silo its key names.</summary>
[AttributeUsage(AttributeTargets.Class, AllowMultiple = false)]
public sealed class NodePlacementAttribute() : PlacementAttribute(NodePlacementStrategy.Instance);
