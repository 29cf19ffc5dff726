using ClusterHeap.Grains.CentralHeap;
using ClusterHeap.Grains.Gc;
using ClusterHeap.Grains.Metrics;
using ClusterHeap.Grains.Node;
using ClusterHeap.Grains.Placement;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Orleans.Configuration;
using Orleans.Hosting;
using Orleans.Runtime;

namespace ClusterHeap.Grains;

/// <summary>The one call that turns a silo into a ClusterHeap node (silo host, embedded cluster and tests alike).</summary>
public static class ClusterHeapSiloBuilderExtensions
{
    /// <summary>
    /// Names the node and sets membership's death detection (<see cref="ClusterHeapOptions"/>), and registers the node service (this silo's heap, created at start at the slot the central heap
    /// assigns), the node placement director that pins mcache and heap node grains to their silo,
    /// the membership watcher that reports dead silos to the central heap, and the strongly
    /// consistent grain directory that keeps the central heap to one activation.
    /// </summary>
    public static ISiloBuilder AddClusterHeap(this ISiloBuilder silo, Action<ClusterHeapOptions>? configure = null)
    {
        silo.Services.AddOptions<ClusterHeapOptions>();
        if (configure is not null)
        {
            silo.Services.Configure(configure);
        }

        silo.Services.AddOptions<SiloOptions>().PostConfigure<IOptions<ClusterHeapOptions>>((s, h) => s.SiloName = h.Value.NodeName ?? s.SiloName);
        silo.Services.AddOptions<ClusterMembershipOptions>().PostConfigure<IOptions<ClusterHeapOptions>>((m, h) =>
        {
            m.ProbeTimeout = h.Value.ProbeTimeout;
            m.NumMissedProbesLimit = 2;
        });

        silo.Services.AddSingleton<HeapNodeService>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<HeapNodeService>());
        // The ClusterHeap meter (observable instruments only: free until something listens).
        silo.Services.AddMetrics();
        silo.Services.AddSingleton<CentralHeapBoard>();
        silo.Services.AddSingleton<ClusterHeapMeter>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<ClusterHeapMeter>());
        // The cluster collector: its node side, and its hooks on the data path (Gc/GcGateFilter.cs).
        silo.Services.AddSingleton<GcNode>();
        silo.AddIncomingGrainCallFilter<GcGateFilter>();
        silo.Services.AddSingleton<MembershipWatcher>();
        silo.Services.AddSingleton<ILifecycleParticipant<ISiloLifecycle>>(sp => sp.GetRequiredService<MembershipWatcher>());
        silo.AddPlacementDirector<NodePlacementStrategy, NodePlacementDirector>();
        // The central heap must be one activation per cluster even while silos join. Orleans' default
        // directory is eventually consistent: two silos joining at once could each activate a central
        // heap, and registrations sent to the one Orleans later removed as a duplicate were lost. The
        // distributed directory hands its ranges over under membership view changes, so there is only
        // ever one. Only the central heap uses it: mcache and heap node grains are pinned to their
        // silo, where one catalog already keeps them single, and stay on the default directory.
#pragma warning disable ORLEANSEXP003 // evaluation API; its documented behaviour is what this needs
        silo.AddDistributedGrainDirectory(CentralHeapGrain.Directory);
#pragma warning restore ORLEANSEXP003
        return silo;
    }
}
