using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The client a lease call comes from (docs/DESIGN.md §12). A client is known by its Orleans connection's grain id, the
/// source every call it makes carries; a grain method cannot see its call's source, so <see cref="GcGateFilter"/> puts
/// it here for the calls that need it (the central heap's RenewClient and EndClient, a few per client per lease term)
/// and the method reads it in its synchronous part. The data path never sets it: there the filter reads the source
/// itself.
/// </summary>
internal static class GcCaller
{
    private static readonly AsyncLocal<GrainId?> Current = new();

    /// <summary>The calling client, or null when the call did not come from a client (a grain, or no filter ran).</summary>
    public static GrainId? Client
    {
        get => Current.Value;
        set => Current.Value = value;
    }
}
