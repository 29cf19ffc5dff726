using ClusterHeap.Contracts;
using ClusterHeap.Grains;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// An in-process test cluster where every silo is a ClusterHeap node (one <c>AddClusterHeap</c> call,
/// as the silo host does), plus the helpers tests share: the pointer router, grain shortcuts, and
/// waiting for membership to declare a silo dead (an event, never a sleep).
/// </summary>
public sealed class HeapCluster : IAsyncDisposable
{
    /// <summary>Arena per node in tests: small, so the cluster stays light.</summary>
    public const long TestArena = 64L << 20;

    private HeapCluster(InProcessTestCluster cluster)
    {
        Cluster = cluster;
        Router = new HeapRouter(cluster.Client);
    }

    public InProcessTestCluster Cluster { get; }

    public HeapRouter Router { get; }

    public IClusterClient Client => Cluster.Client;

    public ICentralHeapGrain CentralHeap => Client.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap);

    /// <summary>Starts <paramref name="silos"/> nodes; <paramref name="configure"/> may tune one node's options by silo name.</summary>
    public static async Task<HeapCluster> StartAsync(short silos, Action<string, ClusterHeapOptions>? configure = null)
    {
        var builder = new InProcessTestClusterBuilder(silos);
        builder.Options.ConfigureFileLogging = false;
        builder.ConfigureSilo((options, silo) => silo.AddClusterHeap(o =>
        {
            o.ArenaSize = TestArena;
            o.ProcessorsPerNode = 2;
            o.GrantChunk = 4L << 20;
            o.ScavengeDelay = TimeSpan.Zero;
            configure?.Invoke(options.SiloName, o);
        }));
        InProcessTestCluster cluster = builder.Build();
        await cluster.DeployAsync();
        var heap = new HeapCluster(cluster);
        await heap.Router.RefreshAsync();
        return heap;
    }

    public IMCacheGrain MCache(string node, int p = 0) => Client.GetGrain<IMCacheGrain>(GrainKeys.MCache(node, p));

    public IHeapNodeGrain Node(string node) => Client.GetGrain<IHeapNodeGrain>(node);

    public async Task<NodeInfo[]> NodesAsync() => await CentralHeap.GetNodesAsync();

    public async Task<NodeInfo> NodeAsync(string name) => (await NodesAsync()).Single(n => n.Name == name);

    /// <summary>Every verifier (cluster tier and each live node) reports ok.</summary>
    public async Task AssertVerifiedAsync()
    {
        VerifyResult[] results = await CentralHeap.VerifyAsync();
        Assert.All(results, r => Assert.True(r.Ok, $"{r.Node}: {r.Problem}"));
        Assert.True(results.Length >= 2);
    }

    /// <summary>Kills a silo, waits until a surviving silo's membership declares it dead, and has the central heap reclaim it.</summary>
    public async Task KillAndReclaimAsync(SiloHandle victim)
    {
        InProcessSiloHandle witness = Cluster.Silos.First(s => s.SiloAddress != victim.SiloAddress);
        IClusterMembershipService membership = Cluster.GetSiloServiceProvider(witness.SiloAddress).GetRequiredService<IClusterMembershipService>();
        Task dead = WaitForDeadAsync(membership, victim.SiloAddress);
        await Cluster.KillSiloAsync((InProcessSiloHandle)victim);
        await dead;
        // The watchers report the death too; this call makes the reclamation finish before the test looks.
        await CentralHeap.NodeDiedAsync(victim.SiloAddress);
        await Router.RefreshAsync();
    }

    /// <summary>Completes when membership declares <paramref name="silo"/> dead (60 s bound: a timeout is missing evidence).</summary>
    public static async Task WaitForDeadAsync(IClusterMembershipService membership, SiloAddress silo)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(60));
        await foreach (ClusterMembershipSnapshot? snapshot in membership.MembershipUpdates.WithCancellation(timeout.Token))
        {
            if (snapshot.GetSiloStatus(silo) == SiloStatus.Dead)
            {
                return;
            }
        }
    }

    public async ValueTask DisposeAsync() => await Cluster.DisposeAsync();
}

/// <summary>
/// The cluster most tests share: three nodes, the last with an 8 MiB arena so that it leases from
/// the others once it is full.
/// </summary>
public sealed class SharedClusterFixture : IAsyncLifetime
{
    public const long SmallArena = 8L << 20;

    public HeapCluster Heap { get; private set; } = null!;

    /// <summary>The node with the small arena.</summary>
    public string SmallNode { get; private set; } = "";

    public async Task InitializeAsync()
    {
        string? small = null;
        Heap = await HeapCluster.StartAsync(3, (name, o) =>
        {
            if (name.EndsWith('2'))
            {
                o.ArenaSize = SmallArena;
                small = name;
            }
        });
        SmallNode = small ?? throw new InvalidOperationException("no silo name ends in 2: " + string.Join(", ", Heap.Cluster.Silos.Select(s => s.Name)));
    }

    public async Task DisposeAsync() => await Heap.DisposeAsync();
}

[CollectionDefinition(Name)]
public sealed class SharedClusterCollection : ICollectionFixture<SharedClusterFixture>
{
    public const string Name = "shared cluster";
}
