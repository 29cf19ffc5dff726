// A plain Orleans no-op grain program: the transport anchor of scripts/bench-cluster.sh. Nothing of
// ClusterHeap is in it, so its rate is what one silo process and one client process can do with a grain
// call that carries nothing and does nothing, on the same machine and in the same run as the cluster.
//
//   orleans-noop silo   --silo-port P --gateway-port G      runs one silo until SIGTERM
//   orleans-noop client --gateway-port G --seconds S        warms up, then measures and prints
//     noop-1  rate=<calls/s> p50us=<µs> p99us=<µs>       one call at a time
//     noop-64 rate=<calls/s> p50us=<µs> p99us=<µs>       64 calls in flight
using System.Diagnostics;
using System.Globalization;
using System.Net;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using OrleansNoop;

string mode = args.Length > 0 ? args[0] : "";
int Arg(string name, int fallback)
{
    int i = Array.IndexOf(args, "--" + name);
    return i >= 0 && i + 1 < args.Length ? int.Parse(args[i + 1], CultureInfo.InvariantCulture) : fallback;
}

int gatewayPort = Arg("gateway-port", 30900);
if (mode == "silo")
{
    int siloPort = Arg("silo-port", 11900);
    using IHost silo = Host.CreateDefaultBuilder()
        .UseOrleans(b => b.UseLocalhostClustering(siloPort, gatewayPort, serviceId: "noop", clusterId: "noop"))
        .ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning))
        .Build();
    await silo.StartAsync();
    Console.WriteLine($"noop silo ready on gateway {gatewayPort}");
    await silo.WaitForShutdownAsync();
    return 0;
}

if (mode != "client")
{
    Console.Error.WriteLine("usage: orleans-noop silo --silo-port P --gateway-port G | client --gateway-port G --seconds S");
    return 2;
}

var each = TimeSpan.FromSeconds(Arg("seconds", 3));
using IHost client = Host.CreateDefaultBuilder()
    .UseOrleansClient(b => b.UseStaticClustering(new IPEndPoint(IPAddress.Loopback, gatewayPort)).Configure<Orleans.Configuration.ClusterOptions>(o => (o.ClusterId, o.ServiceId) = ("noop", "noop")))
    .ConfigureLogging(l => l.SetMinimumLevel(LogLevel.Warning))
    .Build();
await client.StartAsync();
INoopGrain grain = client.Services.GetRequiredService<IClusterClient>().GetGrain<INoopGrain>(0);

await Loop(TimeSpan.FromSeconds(1), 64, grain); // warm-up: activation, connection, JIT tiers
Report("noop-1", await Loop(each, 1, grain));
Report("noop-64", await Loop(each, 64, grain));
await client.StopAsync();
return 0;

static void Report(string name, (double Rate, double P50, double P99) m) =>
    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{name} rate={m.Rate:0} p50us={m.P50:0} p99us={m.P99:0}"));

static async Task<(double Rate, double P50, double P99)> Loop(TimeSpan each, int inFlight, INoopGrain grain)
{
    var samples = new List<double>[inFlight];
    var clock = Stopwatch.StartNew();
    await Task.WhenAll(Enumerable.Range(0, inFlight).Select(async k =>
    {
        List<double> mine = samples[k] = [];
        while (clock.Elapsed < each)
        {
            long start = Stopwatch.GetTimestamp();
            await grain.NoopAsync();
            mine.Add(Stopwatch.GetElapsedTime(start).TotalMicroseconds);
        }
    }));
    double seconds = clock.Elapsed.TotalSeconds;
    double[] all = [.. samples.SelectMany(s => s).Order()];
    return (all.Length / seconds, all[all.Length / 2], all[(int)(all.Length * 0.99)]);
}

namespace OrleansNoop
{
    /// <summary>A grain whose one method does nothing.</summary>
    public interface INoopGrain : IGrainWithIntegerKey
    {
        Task NoopAsync();
    }

    /// <summary>The no-op grain.</summary>
    public sealed class NoopGrain : Grain, INoopGrain
    {
        public Task NoopAsync() => Task.CompletedTask;
    }
}
