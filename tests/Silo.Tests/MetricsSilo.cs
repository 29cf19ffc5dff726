using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ClusterHeap.Grains.Metrics;
using ClusterHeap.Grains.Node;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Orleans;

namespace ClusterHeap.Silo.Tests;

/// <summary>
/// A real silo host, started in this process exactly as <c>clusterheap-silo --metrics-port P</c> builds it (its own
/// cluster of one: it hosts the central heap too), on free loopback ports, and its Prometheus endpoint.
/// </summary>
/// <remarks>
/// Test classes that start one belong to the <see cref="Collection"/> collection, so no two run at once: a meter
/// listener sees every meter of the process by name, so one silo's endpoint would also export another's ClusterHeap
/// meter (in a real deployment each silo is its own process).
/// </remarks>
public sealed class MetricsSilo : IAsyncDisposable
{
    /// <summary>The xunit collection of the test classes that start a metrics silo: they run one after another.</summary>
    public const string Collection = "metrics silos";

    private readonly HttpClient _http = new() { Timeout = TimeSpan.FromSeconds(30) };

    private MetricsSilo(IHost host, int gatewayPort, int metricsPort, string clusterId)
    {
        Host = host;
        GatewayPort = gatewayPort;
        MetricsPort = metricsPort;
        ClusterId = clusterId;
    }

    public IHost Host { get; }

    public int GatewayPort { get; }

    public int MetricsPort { get; }

    public string ClusterId { get; }

    public IGrainFactory Grains => Host.Services.GetRequiredService<IGrainFactory>();

    /// <summary>The options that point a `clusterheap` command line at this silo.</summary>
    public string[] ConnectArgs => ["--gateway", $"127.0.0.1:{Str(GatewayPort)}", "--cluster-id", ClusterId];

    /// <summary>Starts node <paramref name="node"/> (256 MiB arena, 2 mcaches) with <paramref name="options"/> added, and waits for its heap.</summary>
    public static async Task<MetricsSilo> StartAsync(string node, params string[] options)
    {
        int[] ports = FreePorts(3);
        string clusterId = $"metrics-{Guid.NewGuid():N}";
        var settings = SiloSettings.Parse(
            ["--name", node, "--silo-port", Str(ports[0]), "--gateway-port", Str(ports[1]), "--metrics-port", Str(ports[2]),
             "--arena-size", "256MiB", "--procs", "2", "--listen", "127.0.0.1", "--cluster-id", clusterId, .. options],
            _ => null);
        IHost host = Program.Build(settings);
        await host.StartAsync();
        await host.Services.GetRequiredService<HeapNodeService>().Ready.WaitAsync(TimeSpan.FromSeconds(60));
        return new MetricsSilo(host, ports[1], ports[2], clusterId);
    }

    public async Task<PrometheusScrape> ScrapeAsync()
    {
        using HttpResponseMessage response = await _http.GetAsync(new Uri($"http://127.0.0.1:{Str(MetricsPort)}/metrics"));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        return new PrometheusScrape(await response.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// A scrape whose heap read is newer than everything before this call. The meter answers one
    /// collection's instruments from one heap read and reuses it for up to
    /// <see cref="ClusterHeapMeter.SampleAge"/>: that is the freshness it promises, so
    /// the scrape comes that long after the call.
    /// </summary>
    public async Task<PrometheusScrape> FreshScrapeAsync()
    {
        await Task.Delay(ClusterHeapMeter.SampleAge + TimeSpan.FromMilliseconds(5));
        return await ScrapeAsync();
    }

    public async ValueTask DisposeAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        await Host.StopAsync(timeout.Token);
        Host.Dispose();
        _http.Dispose();
    }

    public static string Str(int value) => value.ToString(CultureInfo.InvariantCulture);

    private static int[] FreePorts(int count)
    {
        TcpListener[] listeners = [.. Enumerable.Range(0, count).Select(_ => new TcpListener(IPAddress.Loopback, 0))];
        foreach (TcpListener l in listeners)
        {
            l.Start();
        }

        int[] ports = [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        foreach (TcpListener l in listeners)
        {
            l.Stop();
        }

        return ports;
    }
}
