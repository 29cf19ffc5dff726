using System.Diagnostics;
using System.Net;
using ClusterHeap.Contracts;
using ClusterHeap.Grains;
using ClusterHeap.Grains.Node;
using ClusterHeap.Heap;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;
using StackExchange.Redis;

namespace ClusterHeap.Client.Connect;

/// <summary>
/// A client connected to a ClusterHeap cluster, and the embedded silos it started when it was asked to
/// bring its own cluster. Embedded silos are real Orleans silos on loopback ports (localhost
/// clustering with the first silo as primary), each turned into a node by <c>AddClusterHeap</c>,
/// exactly as the silo host does; the client reaches them through their gateways like any other client.
/// </summary>
public sealed class ClusterConnection : IAsyncDisposable
{
    private readonly List<IHost> _silos;
    private readonly IHost _clientHost;

    private ClusterConnection(IHost clientHost, List<IHost> silos, string description, string clusterId, IReadOnlyList<string> gateways)
    {
        _clientHost = clientHost;
        _silos = silos;
        Description = description;
        ClusterId = clusterId;
        Gateways = gateways;
        Client = clientHost.Services.GetRequiredService<IClusterClient>();
        Router = new HeapRouter(Client);
        RootLease = clientHost.Services.GetRequiredService<ClientRootLease>();
    }

    /// <summary>This client's lease on its roots, and its id as the cluster knows it (ClientRootLease.cs).</summary>
    public ClientRootLease RootLease { get; }

    public IClusterClient Client { get; }

    /// <summary>Routes pointers to their owner node (shared by every command of this connection).</summary>
    public HeapRouter Router { get; }

    /// <summary>"embedded cluster of 3 silos (node0 …)", "gateways …", "redis …".</summary>
    public string Description { get; }

    /// <summary>The Orleans cluster id (an embedded cluster's fresh one, so another client can join it).</summary>
    public string ClusterId { get; }

    /// <summary>The gateways this client knows as host:port (embedded: its silos' loopback gateways; redis: none).</summary>
    public IReadOnlyList<string> Gateways { get; }

    public ICentralHeapGrain CentralHeap => Client.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap);

    public IMCacheGrain MCache(string node, int p = 0) => Client.GetGrain<IMCacheGrain>(GrainKeys.MCache(node, p));

    public IHeapNodeGrain Node(string node) => Client.GetGrain<IHeapNodeGrain>(node);

    /// <summary>Live nodes by slot, fresh from the central heap (also refreshes the router).</summary>
    public async Task<NodeInfo[]> NodesAsync()
    {
        NodeInfo[] nodes = await CentralHeap.GetNodesAsync();
        await Router.RefreshAsync();
        return [.. nodes.OrderBy(n => n.Slot)];
    }

    public static async Task<ClusterConnection> OpenAsync(ConnectOptions o, CancellationToken cancellation = default)
    {
        if (o.IsEmbedded) return await StartEmbeddedAsync(o, cancellation);

        string clusterId = o.ClusterId ?? ConnectOptions.DefaultClusterId;
        IHost client = BuildClient(o, c =>
        {
            c.Configure<ClusterOptions>(x => { x.ClusterId = clusterId; x.ServiceId = o.ServiceId; });
            if (o.Redis is not null)
            {
                string redis = o.Redis;
                c.UseRedisClustering(r => r.ConfigurationOptions = ConfigurationOptions.Parse(redis));
            }
            else
            {
                c.UseStaticClustering([.. o.Gateways.Select(g => Endpoints.Resolve(g, "--gateway"))]);
            }
        });
        // Orleans' connection retries are bounded by --connect-timeout (the retry filter below), but a Redis
        // membership lookup retries on its own schedule first: bound the whole start, so the command gives up
        // when it said it would. A start abandoned here ends with the process (the command exits 3).
        var start = Task.Run(() => client.StartAsync(cancellation), CancellationToken.None); // a Redis lookup blocks the caller
        try
        {
            await start.WaitAsync(o.ConnectTimeout + TimeSpan.FromSeconds(1), cancellation);
        }
        catch (Exception e) when (e is TimeoutException || !start.IsCompleted)
        {
            _ = start.ContinueWith(_ => client.Dispose(), TaskScheduler.Default);
            throw;
        }
        catch
        {
            client.Dispose();
            throw;
        }
        string what = o.Redis is not null ? $"cluster '{clusterId}' through redis {o.Redis}" : $"gateways {string.Join(",", o.Gateways)}";
        var connection = new ClusterConnection(client, [], what, clusterId, o.Gateways);
        await connection.NodesAsync();
        await connection.RootLease.StartAsync(connection.Client);
        return connection;
    }

    private static async Task<ClusterConnection> StartEmbeddedAsync(ConnectOptions o, CancellationToken cancellation)
    {
        int n = o.Embedded;
        int[] ports = Endpoints.FreePorts(2 * n);
        string clusterId = o.ClusterId ?? $"clusterheap-embedded-{Guid.NewGuid():N}"[..32];
        var primary = new IPEndPoint(IPAddress.Loopback, ports[0]);
        var silos = new List<IHost>();
        try
        {
            for (int i = 0; i < n; i++)
            {
                silos.Add(BuildSilo(o, $"node{i}", ports[2 * i], ports[2 * i + 1], primary, clusterId));
            }
            // The primary first (the others join through it), then the rest together.
            await silos[0].StartAsync(cancellation);
            await Task.WhenAll(silos.Skip(1).Select(s => s.StartAsync(cancellation)));

            int[] gateways = [.. Enumerable.Range(0, n).Select(i => ports[2 * i + 1])];
            IHost client = BuildClient(o, c => c.UseLocalhostClustering(gateways, o.ServiceId, clusterId));
            await client.StartAsync(cancellation);
            var connection = new ClusterConnection(client, silos,
                $"embedded cluster of {n} silo{(n == 1 ? "" : "s")} in this process (node0..node{n - 1}, arena {ByteSize.Format(o.ArenaSize)} each)",
                clusterId, [.. gateways.Select(g => $"127.0.0.1:{g}")]);
            await connection.WaitForNodesAsync(n, cancellation);
            await connection.RootLease.StartAsync(connection.Client);
            return connection;
        }
        catch
        {
            foreach (IHost s in silos) s.Dispose();
            throw;
        }
    }

    /// <summary>Every embedded silo registers its heap while starting; this confirms the central heap counts them all.</summary>
    private async Task WaitForNodesAsync(int count, CancellationToken cancellation)
    {
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(cancellation);
        timeout.CancelAfter(TimeSpan.FromSeconds(30));
        while ((await NodesAsync()).Length < count)
        {
            await Task.Delay(50, timeout.Token);
        }
    }

    private static IHost BuildSilo(ConnectOptions o, string name, int siloPort, int gatewayPort, IPEndPoint primary, string clusterId)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        ConfigureLogging(builder, o);
        builder.UseOrleans(silo =>
        {
            silo.UseLocalhostClustering(siloPort, gatewayPort, siloPort == primary.Port ? null : primary, o.ServiceId, clusterId);
            silo.AddClusterHeap(h =>
            {
                h.NodeName = name;
                h.ArenaSize = o.ArenaSize;
                h.ProcessorsPerNode = o.Procs;
                h.GrantChunk = o.GrantChunk;
                h.ScavengeDelay = TimeSpan.FromSeconds(10);
                o.ConfigureNodes?.Invoke(h);
            });
        });
        return builder.Build();
    }

    private static IHost BuildClient(ConnectOptions o, Action<IClientBuilder> clustering)
    {
        HostApplicationBuilder builder = Host.CreateApplicationBuilder(new HostApplicationBuilderSettings { DisableDefaults = true });
        ConfigureLogging(builder, o);
        builder.UseOrleansClient(c =>
        {
            clustering(c);
            c.Services.AddSingleton(new ClientRootLease());   // an instance: the connection ends it, not the container
            // Orleans retries a first connection forever by default: give a cluster that is still starting
            // --connect-timeout (10 s), then fail; the caller names what it tried in one sentence.
            Stopwatch? failing = null;
            c.UseConnectionRetryFilter(async (exception, cancellation) =>
            {
                failing ??= Stopwatch.StartNew();
                if (failing.Elapsed > o.ConnectTimeout) return false;
                await Task.Delay(TimeSpan.FromSeconds(1), cancellation);
                return true;
            });
            // A silo killed mid-run must not hold a caller for the default 30 s.
            c.Configure<ClientMessagingOptions>(x => x.ResponseTimeout = TimeSpan.FromSeconds(10));
        });
        return builder.Build();
    }

    private static void ConfigureLogging(HostApplicationBuilder builder, ConnectOptions o)
    {
        builder.Logging.ClearProviders();
        if (o.Verbose)
        {
            builder.Logging.AddSimpleConsole(c => c.SingleLine = true);
        }

        if (o.LogSink is not null)
        {
            builder.Logging.AddProvider(o.LogSink);
        }

        if (o.Verbose || o.LogSink is not null)
        {
            builder.Logging.SetMinimumLevel(LogLevel.Information);
        }
    }

    /// <summary>The node heap of embedded silo <paramref name="index"/> (node0 = 0), for a program that runs its collector.</summary>
    public NodeHeap EmbeddedHeap(int index) => _silos[index].Services.GetRequiredService<HeapNodeService>().Heap;

    /// <summary>Stops embedded silo <paramref name="index"/> (node0 = 0) as a shutdown would: its node and its objects are gone.</summary>
    public async Task StopEmbeddedSiloAsync(int index)
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await _silos[index].StopAsync(timeout.Token);
    }

    /// <summary>
    /// Kills embedded silo <paramref name="index"/> as SIGKILL would a process: a stop whose token is already
    /// cancelled, so it neither leaves membership nor hands anything back; the survivors must find it dead.
    /// </summary>
    public async Task KillEmbeddedSiloAsync(int index)
    {
        using var now = new CancellationTokenSource();
        await now.CancelAsync();
        try
        {
            await _silos[index].StopAsync(now.Token);
        }
        catch (OperationCanceledException)
        {
            // The point: it did not stop in good order.
        }
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(10));
        await RootLease.DisposeAsync();
        await RootLease.EndAsync(Client);
        try
        {
            await _clientHost.StopAsync(timeout.Token);
        }
        catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
        {
            // Shutting down: nothing to hand back.
        }
        _clientHost.Dispose();
        // Stop the silos together; each hands its leases back as it goes.
        await Task.WhenAll(_silos.Select(async s =>
        {
            try
            {
                await s.StopAsync(timeout.Token);
            }
            catch (Exception e) when (e is OperationCanceledException or ObjectDisposedException)
            {
                // A silo that cannot stop in time is torn down with the process.
            }
        }));
        foreach (IHost s in _silos) s.Dispose();
    }
}
