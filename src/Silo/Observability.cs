using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using OpenTelemetry.Metrics;
using OpenTelemetry.Resources;
using Orleans.Dashboard;
using Orleans.Hosting;

namespace ClusterHeap.Silo;

/// <summary>
/// What a silo shows of itself when asked, all off by default so a benchmark never pays for it:
/// <c>--metrics-port</c> exports the <c>ClusterHeap</c> meter (or those <c>--metrics-meters</c> names:
/// <c>ClusterHeap,Microsoft.Orleans</c> adds Orleans' own, whose instruments record on every message once
/// something listens) through OpenTelemetry on a Prometheus scrape endpoint (a plain HttpListener, no web host);
/// <c>--dashboard-port</c> adds the Orleans dashboard, which needs the silo to run in an ASP.NET Core
/// host (<see cref="CreateBuilder"/>). <c>dotnet-counters</c> needs neither: it reads the meters of
/// any silo process through the runtime's event pipe.
/// </summary>
internal static class Observability
{
    /// <summary>A web application builder (Kestrel on the dashboard's port only) when the dashboard is on, else a plain host.</summary>
    public static IHostApplicationBuilder CreateBuilder(SiloSettings settings)
    {
        if (settings.DashboardPort is not int port)
        {
            return Host.CreateApplicationBuilder();
        }

        WebApplicationBuilder web = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [] });
        web.WebHost.ConfigureKestrel(k => k.Listen(settings.Listen, port));
        return web;
    }

    /// <summary>Inside <c>UseOrleans</c>: the dashboard's grains and its call statistics, when it is on.</summary>
    public static void ConfigureSilo(ISiloBuilder silo, SiloSettings settings)
    {
        if (settings.DashboardPort is not null)
        {
            silo.AddDashboard();
        }
    }

    /// <summary>The scrape endpoint, when <c>--metrics-port</c> is given.</summary>
    public static void AddMetricsEndpoint(IHostApplicationBuilder builder, SiloSettings settings)
    {
        if (settings.MetricsPort is not int port)
        {
            return;
        }

        // HttpListener takes "*" for every address, which the exporter's own Host option cannot say.
        bool any = settings.Listen.Equals(IPAddress.Any) || settings.Listen.Equals(IPAddress.IPv6Any);
        string prefix = any ? $"http://*:{port}/" : $"http://{new IPEndPoint(settings.Listen, port)}/";
        builder.Services.AddOpenTelemetry()
            .ConfigureResource(r => r.AddService("clusterheap-silo", serviceInstanceId: settings.Name))
            .WithMetrics(m => m
                .AddMeter(settings.MetricsMeters)
                .AddPrometheusHttpListener(o =>
                {
                    o.Port = port;
                    o.ConfigureHttpListener = (_, listener) =>
                    {
                        listener.Prefixes.Clear();
                        listener.Prefixes.Add(prefix);
                        if (IPAddress.IsLoopback(settings.Listen))
                        {
                            listener.Prefixes.Add($"http://localhost:{port}/"); // HttpListener matches the Host header by name
                        }
                    };
                    o.ScrapeResponseCacheDurationMilliseconds = 0; // every scrape reads the meters anew
                }));
    }

    /// <summary>"metrics http://ADDR:PORT/metrics, dashboard http://ADDR:PORT/, " for the ready line ("" when both are off).</summary>
    public static string Describe(SiloSettings settings) =>
        (settings.MetricsPort is int m ? $"metrics http://{settings.Advertise}:{m}/metrics, " : "")
        + (settings.DashboardPort is int d ? $"dashboard http://{settings.Advertise}:{d}/, " : "");

    /// <summary>Builds the host; with the dashboard on, maps its pages at the root of its port.</summary>
    public static IHost Build(IHostApplicationBuilder builder)
    {
        switch (builder)
        {
            case WebApplicationBuilder web:
                WebApplication app = web.Build();
                app.MapOrleansDashboard();
                return app;
            case HostApplicationBuilder plain:
                return plain.Build();
            default:
                throw new InvalidOperationException($"unexpected host builder {builder.GetType().Name}");
        }
    }
}
