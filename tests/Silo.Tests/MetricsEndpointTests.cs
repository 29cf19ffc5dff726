using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using ClusterHeap.Heap;
using Microsoft.Extensions.DependencyInjection;
using Orleans;

namespace ClusterHeap.Silo.Tests;

/// <summary>
/// A real silo host, started in this process exactly as <c>clusterheap-silo --metrics-port P</c> builds
/// it, scraped over HTTP while its node allocates: the ClusterHeap instruments carry the node's
/// MemStats (the figures GetStats returns), and Orleans' own meter is exported beside them.
/// </summary>
[Collection(MetricsSilo.Collection)]
public sealed class MetricsEndpointTests : IAsyncLifetime
{
    private const string Node = "metrics-node";
    private static readonly (string, string) Tag = ("node", Node);
    private MetricsSilo _silo = null!;

    public async Task InitializeAsync() => _silo = await MetricsSilo.StartAsync(Node, "--metrics-meters", "ClusterHeap,Microsoft.Orleans");

    public async Task DisposeAsync() => await _silo.DisposeAsync();

    [Fact]
    public async Task ScrapesDuringAllocationAgreeWithTheNodesMemStats()
    {
        IGrainFactory grains = _silo.Host.Services.GetRequiredService<IGrainFactory>();
        IHeapNodeGrain node = grains.GetGrain<IHeapNodeGrain>(Node);
        using var stop = new CancellationTokenSource();
        Task<long> allocator = AllocateUntilAsync(grains, stop.Token);

        // While the node allocates: every scraped counter lies between GetStats before and after it.
        for (int round = 0; round < 5; round++)
        {
            NodeStats before = await node.GetStatsAsync();
            PrometheusScrape scrape = await _silo.FreshScrapeAsync();
            NodeStats after = await node.GetStatsAsync();
            Between(before.Mallocs, scrape.Value("clusterheap_gc_heap_allocs_objects_total", Tag), after.Mallocs, "mallocs");
            Between(before.Frees, scrape.Value("clusterheap_gc_heap_frees_objects_total", Tag), after.Frees, "frees");
            Between(before.TotalAlloc, scrape.Value("clusterheap_gc_heap_allocs_bytes_total", Tag), after.TotalAlloc, "total alloc");
            Between(before.Refills, scrape.Value("clusterheap_mcache_refills_total", Tag), after.Refills, "refills");
        }

        await stop.CancelAsync();
        long allocated = await allocator;
        Assert.True(allocated > 10_000, $"the allocator made only {allocated} objects");

        // Quiet: a scrape that reads the heap after the last allocation equals MemStats in every figure.
        NodeStats stats = await node.GetStatsAsync();
        PrometheusScrape quiet = await _silo.FreshScrapeAsync();
        Assert.True(stats.Mallocs >= allocated, $"{stats.Mallocs} mallocs for {allocated} allocated");
        (string Metric, long Expected)[] pairs =
        [
            ("clusterheap_gc_heap_allocs_bytes_total", stats.TotalAlloc),
            ("clusterheap_gc_heap_allocs_objects_total", stats.Mallocs),
            ("clusterheap_gc_heap_frees_bytes_total", stats.TotalAlloc - stats.HeapAlloc),
            ("clusterheap_gc_heap_frees_objects_total", stats.Frees),
            ("clusterheap_gc_heap_objects_objects", stats.HeapObjects),
            ("clusterheap_gc_heap_tiny_allocs_objects_total", stats.TinyAllocs),
            ("clusterheap_memory_classes_heap_objects_bytes", stats.HeapAlloc),
            ("clusterheap_memory_classes_heap_unused_bytes", stats.HeapInuse - stats.HeapAlloc),
            ("clusterheap_memory_classes_heap_free_bytes", stats.HeapIdle - stats.HeapReleased),
            ("clusterheap_memory_classes_heap_released_bytes", stats.HeapReleased),
            ("clusterheap_memory_classes_metadata_other_bytes", stats.Sys - stats.HeapSys),
            ("clusterheap_memory_classes_total_bytes", stats.Sys),
            ("clusterheap_heap_arena_bytes", stats.ArenaSize),
            ("clusterheap_heap_growth_limit_bytes", stats.Granted),
            ("clusterheap_heap_large_objects", stats.LargeObjects),
            ("clusterheap_heap_large_bytes", stats.LargeBytes),
            ("clusterheap_mcache_refills_total", stats.Refills),
            ("clusterheap_grants_total", stats.Grants),
            ("clusterheap_scavenger_released_bytes_total", stats.ScavengedTotal),
            ("clusterheap_leases_lent_total", stats.LeasesLent),
            ("clusterheap_leases_taken_total", stats.LeasesTaken),
        ];
        foreach ((string? metric, long expected) in pairs)
        {
            Assert.True(quiet.Value(metric, Tag) == expected, $"{metric} = {quiet.Value(metric, Tag)}, MemStats says {expected}");
        }

        Assert.True(stats.HeapObjects > 0 && stats.Frees > 0 && stats.Refills > 0 && stats.LargeObjects > 0, "the run left live, freed, refilled and large objects");
        foreach (SizeClassStats c in stats.BySize)
        {
            (string, string) cls = ("size_class", MetricsSilo.Str(c.SizeClass));
            Assert.Equal(c.Mallocs, quiet.Value("clusterheap_gc_heap_allocs_by_size_objects_total", Tag, cls));
            Assert.Equal(c.Frees, quiet.Value("clusterheap_gc_heap_frees_by_size_objects_total", Tag, cls));
        }

        Assert.True(stats.BySize.Count(c => c.Mallocs > 0) >= 5, "several size classes were used");

        // The central heap lives on this one silo: its view is exported here too.
        Assert.Equal(1, quiet.Value("clusterheap_central_nodes", Tag));
        Assert.Equal(stats.Granted, quiet.Value("clusterheap_central_node_granted_bytes", Tag, ("slot", MetricsSilo.Str(stats.Slot))));
        Assert.Equal(stats.Granted, quiet.Value("clusterheap_central_granted_bytes", Tag));

        // Orleans' meter is on the same endpoint.
        Assert.Contains(quiet.Names, n => n.StartsWith("orleans_", StringComparison.Ordinal));
    }

    [Fact]
    public async Task AfterCyclesTheCollectorsInstrumentsAgreeWithTheNodesMemStats()
    {
        IGrainFactory grains = _silo.Host.Services.GetRequiredService<IGrainFactory>();
        IHeapNodeGrain node = grains.GetGrain<IHeapNodeGrain>(Node);
        PrometheusScrape before = await _silo.FreshScrapeAsync();
        Assert.Equal(0, before.Value("clusterheap_gc_cycles_total", Tag));
        Assert.DoesNotContain("clusterheap_gc_pauses_seconds_count", before.Names);   // no pause recorded yet
        MallocBatchResult batch = await grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, 0)).MallocBatchAsync(500, 64);
        Assert.Null(batch.Error);
        await grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, 1)).MallocAsync(100_000);

        // The node's collector, twice: nothing roots the objects, so the first cycle's sweep frees them all.
        ClusterHeap.Heap.NodeHeap heap = _silo.Host.Services.GetRequiredService<HeapNodeService>().Heap;
        heap.Collect();
        heap.FinishSweep();
        heap.Collect();
        heap.FinishSweep();
        // Each cycle queued the background sweeper; it finds nothing left but still adds its own time to the
        // collector's CPU on its way out, so the fraction only falls once it has stood down.
        Assert.True(SpinWait.SpinUntil(() => !heap.BackgroundSweepQueued, TimeSpan.FromSeconds(30)), "the background sweeper never stood down");

        NodeStats stats = await node.GetStatsAsync();
        PrometheusScrape quiet = await _silo.FreshScrapeAsync();
        NodeGcStats gc = stats.Gc;
        Assert.Equal(2, gc.NumGC);
        Assert.Equal(501, gc.GcFrees);
        (string Metric, long Expected)[] pairs =
        [
            ("clusterheap_gc_cycles_total", gc.NumGC),
            ("clusterheap_gc_cycles_forced_total", gc.NumForcedGC),
            ("clusterheap_gc_cycles_automatic_total", gc.NumGC - gc.NumForcedGC),
            ("clusterheap_gc_heap_live_bytes", gc.HeapMarked),
            ("clusterheap_gc_heap_frees_swept_objects_total", gc.GcFrees),
            ("clusterheap_gc_sweep_pending", 0),
            ("clusterheap_gc_pauses_seconds_count", 2),
        ];
        foreach ((string metric, long expected) in pairs)
        {
            Assert.True(quiet.Value(metric, Tag) == expected, $"{metric} = {quiet.Value(metric, Tag)}, MemStats says {expected}");
        }

        Assert.Equal((double)gc.NextGC, quiet.Number("clusterheap_gc_heap_goal_bytes", Tag));
        Assert.Equal(gc.PauseTotalNs / 1e9, quiet.Number("clusterheap_gc_pause_seconds_total", Tag), 9);
        Assert.Equal(gc.RecentPausesNs.Sum() / 1e9, quiet.Number("clusterheap_gc_pauses_seconds_sum", Tag), 9);
        double fraction = quiet.Number("clusterheap_gc_cpu_fraction", Tag);   // falls as wall time passes, the collector idle
        Assert.True(fraction > 0 && fraction <= gc.GCCPUFraction, $"GCCPUFraction scraped {fraction}, GetStats said {gc.GCCPUFraction} just before");
        Assert.Equal(2, quiet.Value("clusterheap_gc_pauses_seconds_bucket", Tag, ("le", "+Inf")));
    }

    /// <summary>
    /// Mallocs of mixed sizes (tiny, small, large) on both mcaches until cancelled; each round frees half
    /// of its batch at once and the other half six rounds later, so the live set stays bounded.
    /// </summary>
    private static async Task<long> AllocateUntilAsync(IGrainFactory grains, CancellationToken stop)
    {
        long[] sizes = [8, 24, 100, 512, 3000, 40_000];
        IHeapNodeGrain node = grains.GetGrain<IHeapNodeGrain>(Node);
        var kept = new Queue<HeapPointer[]>();
        long allocated = 0;
        for (int round = 0; !stop.IsCancellationRequested || allocated < 20_000; round++)
        {
            long size = sizes[round % sizes.Length];
            int count = size > 32 << 10 ? 2 : 256;
            MallocBatchResult batch = await grains.GetGrain<IMCacheGrain>(GrainKeys.MCache(Node, round % 2)).MallocBatchAsync(count, size);
            Assert.Null(batch.Error);
            allocated += batch.Pointers.Length;
            int half = batch.Pointers.Length / 2;
            kept.Enqueue(batch.Pointers[half..]);
            HeapPointer[] free = kept.Count > sizes.Length ? [.. batch.Pointers[..half], .. kept.Dequeue()] : batch.Pointers[..half];
            Assert.All(await node.FreeBatchAsync(new PointerBatch(free)), Assert.Null);
        }

        return allocated;
    }

    private static void Between(long low, long value, long high, string what) =>
        Assert.True(low <= value && value <= high, $"{what}: scraped {value}, GetStats said {low} before and {high} after");
}
