using System.Globalization;
using System.Net;
using ClusterHeap.Grains;
using ClusterHeap.Grains.Node;
using ClusterHeap.Heap;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Orleans.Configuration;
using Orleans.Hosting;

namespace ClusterHeap.Silo;

/// <summary>
/// <c>clusterheap-silo</c>: one ClusterHeap node in its own process (docs/DESIGN.md §8). Reads
/// <see cref="SiloSettings"/>, starts an Orleans silo with <c>AddClusterHeap</c>, prints one
/// "ready" line with the node's slot and layout once its heap exists, and on SIGTERM stops
/// gracefully: the node service hands its leases and slot back before the silo leaves.
/// </summary>
internal static class Program
{
    private static async Task<int> Main(string[] args)
    {
        if (args is ["-h"] or ["--help"] or ["help"])
        {
            Console.WriteLine(SiloSettings.Help());
            return 0;
        }

        SiloSettings settings;
        try
        {
            settings = SiloSettings.Parse(args, Environment.GetEnvironmentVariable);
        }
        catch (ArgumentException e)
        {
            await Console.Error.WriteLineAsync($"error: {e.Message}\n\n{SiloSettings.Help()}");
            return 2;
        }

        using IHost host = Build(settings);
        try
        {
            await host.StartAsync();
        }
        catch (Exception e)
        {
            await Console.Error.WriteLineAsync($"error: silo {settings.Name} failed to start: {e.GetBaseException().Message}");
            return 1;
        }

        HeapNodeService node = host.Services.GetRequiredService<HeapNodeService>();
        await node.Ready;
        HeapLayout layout = node.Heap.Layout;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"clusterheap-silo {settings.Name} ready: slot {node.Slot} generation {node.Generation}, silo {settings.Advertise}:{settings.SiloPort}, gateway {settings.Advertise}:{settings.GatewayPort}, "
            + $"spans 0x{layout.SpansStart:x} bitmap 0x{layout.BitmapStart:x} arena 0x{layout.ArenaStart:x}-0x{layout.ArenaEnd:x} ({layout.ArenaSize >> 20} MiB), "
            + $"P={settings.Procs}, {Observability.Describe(settings)}clustering {(settings.Redis is null ? $"development (primary {settings.Primary?.ToString() ?? "self"})" : $"redis {settings.Redis}")}, cluster id {settings.ClusterId}, pid {Environment.ProcessId}"));
        WriteReadyFile(settings, node);

        try
        {
            await host.WaitForShutdownAsync();
        }
        finally
        {
            if (settings.ReadyFile is not null)
            {
                File.Delete(settings.ReadyFile);
            }
        }

        Console.WriteLine($"clusterheap-silo {settings.Name} stopped");
        return 0;
    }

    /// <summary>The silo host as <paramref name="settings"/> say (tests start it in process).</summary>
    internal static IHost Build(SiloSettings settings)
    {
        IHostApplicationBuilder builder = Observability.CreateBuilder(settings);
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o =>
        {
            o.SingleLine = true;
            o.TimestampFormat = "HH:mm:ss.fff ";
        });
        builder.Logging.SetMinimumLevel(LogLevel.Warning);
        builder.Logging.AddFilter("ClusterHeap", Enum.Parse<LogLevel>(settings.LogLevel, ignoreCase: true));
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));

        builder.UseOrleans(silo =>
        {
            if (settings.Redis is not null)
            {
                silo.UseRedisClustering(settings.Redis);
            }
            else
            {
                silo.UseDevelopmentClustering(settings.Primary ?? new IPEndPoint(settings.Advertise, settings.SiloPort));
            }

            silo.Configure<ClusterOptions>(o =>
            {
                o.ClusterId = settings.ClusterId;
                o.ServiceId = settings.ServiceId;
            });
            silo.Configure<EndpointOptions>(o =>
            {
                o.AdvertisedIPAddress = settings.Advertise;
                o.SiloPort = settings.SiloPort;
                o.GatewayPort = settings.GatewayPort;
                o.SiloListeningEndpoint = new IPEndPoint(settings.Listen, settings.SiloPort);
                o.GatewayListeningEndpoint = new IPEndPoint(settings.Listen, settings.GatewayPort);
            });

            silo.AddClusterHeap(o =>
            {
                o.NodeName = settings.Name;
                o.ProbeTimeout = settings.ProbeTimeout;
                o.ArenaSize = settings.ArenaSize;
                o.ProcessorsPerNode = settings.Procs;
                o.ScavengeDelay = settings.ScavengeDelay;
                o.ClusterMemoryLimit = settings.MemoryLimit;
                o.GcPercent = settings.GcPercent;
                o.ClientLease = settings.ClientLease;
                o.GcMode = settings.GcMode;
            });
            Observability.ConfigureSilo(silo, settings);
        });
        Observability.AddMetricsEndpoint(builder, settings);
        return Observability.Build(builder);
    }

    /// <summary>The readiness signal scripts and health checks poll: written whole, then renamed into place.</summary>
    private static void WriteReadyFile(SiloSettings settings, HeapNodeService node)
    {
        if (settings.ReadyFile is null)
        {
            return;
        }

        string text = string.Create(CultureInfo.InvariantCulture,
            $"name={settings.Name}\nslot={node.Slot}\ngeneration={node.Generation}\nsilo_port={settings.SiloPort}\ngateway_port={settings.GatewayPort}\npid={Environment.ProcessId}\n");
        string temp = settings.ReadyFile + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, settings.ReadyFile, overwrite: true);
    }
}
