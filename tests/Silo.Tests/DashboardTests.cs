using System.Text.Json;
using System.Text.RegularExpressions;
using ClusterHeap.Contracts;
using Orleans;

namespace ClusterHeap.Silo.Tests;

/// <summary>
/// The Grafana dashboard provisioned for docker-compose (deploy/grafana/dashboards/clusterheap.json) against a real
/// silo's scrape: no Docker engine runs here, so this is what checks that its panels query metrics that exist.
/// </summary>
[Collection(MetricsSilo.Collection)]
public sealed partial class DashboardTests
{
    private const string Node = "dashboard-node";

    [GeneratedRegex(@"\bclusterheap_[a-z0-9_]+")]
    private static partial Regex ClusterHeapMetric();

    [Fact]
    public async Task EveryClusterHeapMetricTheDashboardQueriesIsInAScrapeAfterAllocationAndACycle()
    {
        JsonElement[] panels = Panels();
        string[] queried = [.. panels
            .SelectMany(p => p.TryGetProperty("targets", out JsonElement t) ? t.EnumerateArray() : Enumerable.Empty<JsonElement>())
            .SelectMany(t => ClusterHeapMetric().Matches(t.GetProperty("expr").GetString()!).Select(m => m.Value))
            .Distinct()];
        Assert.Contains("clusterheap_central_gc_cycles_total", queried);
        Assert.Contains("clusterheap_central_gc_last_pause_seconds", queried);
        Assert.Contains("clusterheap_central_gc_pauses_seconds_bucket", queried);

        await using MetricsSilo silo = await MetricsSilo.StartAsync(Node, "--gogc", "100");
        MallocBatchResult small = await silo.Grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, 0)).MallocBatchAsync(200, 64);
        MallocBatchResult large = await silo.Grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, 1)).MallocBatchAsync(2, 100_000);
        Assert.Null(small.Error);
        Assert.Null(large.Error);
        await silo.Grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap).CollectAsync();
        PrometheusScrape scrape = await silo.FreshScrapeAsync();

        string[] missing = [.. queried.Where(name => !scrape.Names.Contains(name))];
        Assert.True(missing.Length == 0, $"the dashboard queries {string.Join(", ", missing)}, which the scrape does not have");
    }

    [Fact]
    public void TheDashboardsPanelsHaveDistinctIdsAndDoNotOverlap()
    {
        JsonElement[] panels = Panels();
        int[] ids = [.. panels.Select(p => p.GetProperty("id").GetInt32())];
        Assert.Equal(ids.Length, ids.Distinct().Count());
        (int X, int Y, int W, int H, string Title)[] boxes = [.. panels.Select(p =>
        {
            JsonElement g = p.GetProperty("gridPos");
            return (g.GetProperty("x").GetInt32(), g.GetProperty("y").GetInt32(), g.GetProperty("w").GetInt32(), g.GetProperty("h").GetInt32(),
                p.GetProperty("title").GetString()!);
        })];
        foreach ((int x, int y, int w, int h, string title) in boxes)
        {
            Assert.True(x >= 0 && w > 0 && x + w <= 24 && h > 0, $"panel '{title}' lies outside the 24-column grid");
        }

        for (int i = 0; i < boxes.Length; i++)
        {
            for (int j = i + 1; j < boxes.Length; j++)
            {
                (int X, int Y, int W, int H, string Title) a = boxes[i], b = boxes[j];
                bool overlap = a.X < b.X + b.W && b.X < a.X + a.W && a.Y < b.Y + b.H && b.Y < a.Y + a.H;
                Assert.False(overlap, $"panels '{a.Title}' and '{b.Title}' overlap");
            }
        }
    }

    /// <summary>Every panel of the dashboard, rows' nested panels included.</summary>
    private static JsonElement[] Panels()
    {
        string path = Path.Combine(RepositoryRoot(), "deploy", "grafana", "dashboards", "clusterheap.json");
        using var json = JsonDocument.Parse(File.ReadAllText(path));
        return [.. json.RootElement.GetProperty("panels").EnumerateArray()
            .SelectMany(p => p.TryGetProperty("panels", out JsonElement nested) ? nested.EnumerateArray().Prepend(p) : [p])
            .Select(p => p.Clone())];
    }

    private static string RepositoryRoot()
    {
        for (DirectoryInfo? dir = new(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "ClusterHeap.slnx")))
            {
                return dir.FullName;
            }
        }

        throw new InvalidOperationException($"no ClusterHeap.slnx above {AppContext.BaseDirectory}");
    }
}
