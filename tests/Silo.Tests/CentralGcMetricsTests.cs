using System.Text.Json;
using ClusterHeap.Contracts;
using Orleans;
using Cli = ClusterHeap.Client.Program;

namespace ClusterHeap.Silo.Tests;

/// <summary>
/// The central heap's view of the cluster collector in the ClusterHeap meter: a real silo (which hosts the central
/// heap) runs a forced cluster cycle through the real <c>clusterheap gc --json</c>, and a scrape of its endpoint then
/// reports that cycle as the command printed it, and the collector's state as <c>clusterheap gc --log --json</c> does.
/// </summary>
[Collection(MetricsSilo.Collection)]
public sealed class CentralGcMetricsTests
{
    private const string Node = "central-gc-node";
    private static readonly (string, string) Tag = ("node", Node);

    [Theory]
    [InlineData("stw")]
    [InlineData("concurrent")]
    public async Task AfterAForcedClusterCycleTheScrapeReportsItAsGcJsonDid(string mode)
    {
        await using MetricsSilo silo = await MetricsSilo.StartAsync(Node, "--gogc", "100", "--gc-mode", mode);
        // Objects the cycle finds live: a malloc made inside the silo is rooted for the silo's hosted client, a client of its own.
        MallocBatchResult batch = await silo.Grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, 0)).MallocBatchAsync(300, 256);
        Assert.Null(batch.Error);
        // One client with a live root lease besides the command lines below (whose own leases end when they exit): the
        // hosted client, whose roots the lease keeps.
        await silo.Grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap).RenewClientAsync();

        PrometheusScrape before = await silo.FreshScrapeAsync();
        Assert.Equal(0, before.Value("clusterheap_central_gc_cycles_total", Tag));
        Assert.Equal(0, before.Value("clusterheap_central_gc_cycles_aborted_total", Tag));
        Assert.DoesNotContain("clusterheap_central_gc_last_pause_seconds", before.Names);   // no cycle yet

        JsonElement cycle = await GcJsonAsync(silo, "gc", "--json");
        JsonElement status = await GcJsonAsync(silo, "gc", "--log", "--json");
        PrometheusScrape after = await silo.FreshScrapeAsync();

        Assert.Equal(1, cycle.GetProperty("number").GetInt64());
        Assert.Equal(mode == "stw" ? "StopTheWorld" : "Concurrent", status.GetProperty("mode").GetString());
        Assert.True(cycle.GetProperty("marked").GetInt64() >= 300 * 256, $"the cycle marked {cycle.GetProperty("marked")} bytes");
        (string Metric, long Expected)[] counts =
        [
            ("clusterheap_central_gc_cycles_total", status.GetProperty("numGc").GetInt64()),
            ("clusterheap_central_gc_cycles_aborted_total", status.GetProperty("aborted").GetInt64()),
            ("clusterheap_central_gc_heap_live_bytes", cycle.GetProperty("marked").GetInt64()),
            ("clusterheap_central_gc_heap_goal_bytes", cycle.GetProperty("goal").GetInt64()),
            ("clusterheap_central_gc_gogc_percent", status.GetProperty("gogc").GetInt64()),
            ("clusterheap_central_gc_clients", status.GetProperty("liveClients").GetInt64() - 1),   // less the --log command's own
        ];
        foreach ((string metric, long expected) in counts)
        {
            Assert.True(after.Value(metric, Tag) == expected, $"{metric} = {after.Value(metric, Tag)}, clusterheap gc said {expected}");
        }

        Assert.Equal(1, after.Value("clusterheap_central_gc_cycles_total", Tag));
        Assert.Equal(status.GetProperty("goal").GetInt64(), cycle.GetProperty("goal").GetInt64());
        Assert.Equal(1, after.Value("clusterheap_central_gc_clients", Tag));

        // The last cycle's clock phases and pauses, in seconds, as the command printed them in milliseconds.
        double Seconds(string ms) => cycle.GetProperty(ms).GetDouble() / 1000;
        Assert.Equal(Seconds("stopMs"), after.Number("clusterheap_central_gc_last_phase_seconds", Tag, ("phase", "stop")), 9);
        Assert.Equal(Seconds("markMs"), after.Number("clusterheap_central_gc_last_phase_seconds", Tag, ("phase", "mark")), 9);
        Assert.Equal(Seconds("restartMs"), after.Number("clusterheap_central_gc_last_phase_seconds", Tag, ("phase", "restart")), 9);
        (string Pause, double Seconds)[] pauses = mode == "stw"
            ? [("stw", Seconds("pauseMs"))]
            : [("1", Seconds("stopMs")), ("2", Seconds("restartMs"))];
        Assert.Equal(Seconds("pauseMs"), pauses.Sum(p => p.Seconds), 9);
        foreach ((string pause, double seconds) in pauses)
        {
            (string, string) label = ("pause", pause);
            Assert.Equal(seconds, after.Number("clusterheap_central_gc_last_pause_seconds", Tag, label), 9);
            Assert.Equal(1, after.Value("clusterheap_central_gc_pauses_seconds_count", Tag, label));
            Assert.Equal(seconds, after.Number("clusterheap_central_gc_pauses_seconds_sum", Tag, label), 9);
        }

        Assert.Equal(pauses.Length, after.Count("clusterheap_central_gc_last_pause_seconds"));   // no other kind of pause
        Assert.Equal(Seconds("pauseMs"), after.Number("clusterheap_central_gc_pause_seconds_total", Tag), 9);
    }

    [Fact]
    public async Task ACycleThePacerStartedReachesTheScrapeWithNoFurtherCallToTheCentralHeap()
    {
        await using MetricsSilo silo = await MetricsSilo.StartAsync(Node, "--gogc", "100");
        // 8 MiB live passes the node's first trigger (GOGC 100 over nothing marked: 4 MiB): after the malloc the node
        // asks the central heap for a cycle, one-way, and the cycle ends after that call has returned.
        MallocBatchResult batch = await silo.Grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, 0)).MallocBatchAsync(64, 128 << 10);
        Assert.Null(batch.Error);

        // Nothing calls the central heap from here on (no client renews a lease), so only the cycle's own end can post
        // the view the scrape reads. Waits for it through the endpoint, with a generous bound.
        PrometheusScrape scrape = await silo.FreshScrapeAsync();
        var waited = System.Diagnostics.Stopwatch.StartNew();
        while (scrape.Value("clusterheap_central_gc_cycles_total", Tag) == 0 && waited.Elapsed < TimeSpan.FromSeconds(60))
        {
            scrape = await silo.FreshScrapeAsync();
        }

        Assert.Equal(1, scrape.Value("clusterheap_central_gc_cycles_total", Tag));
        long marked = scrape.Value("clusterheap_central_gc_heap_live_bytes", Tag);
        Assert.True(marked >= 64L * (128 << 10), $"the paced cycle marked {marked} bytes of the 8 MiB rooted");
        Assert.Equal(2 * marked, scrape.Value("clusterheap_central_gc_heap_goal_bytes", Tag));   // GOGC 100
        Assert.Equal(1, scrape.Value("clusterheap_central_gc_pauses_seconds_count", Tag, ("pause", "stw")));
    }

    /// <summary>Runs a `clusterheap` command line against the silo (a second client of it, in this process) and parses its JSON.</summary>
    private static async Task<JsonElement> GcJsonAsync(MetricsSilo silo, params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Cli.RunAsync([.. args, .. silo.ConnectArgs], output, error);
        Assert.True(exit == 0, $"clusterheap {string.Join(' ', args)} exited {exit}: {error}");
        using var json = JsonDocument.Parse(output.ToString());
        return json.RootElement.Clone();
    }
}
