using System.Diagnostics;
using System.Globalization;
using System.Text.Json.Nodes;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Tests.Browser;
using ClusterHeap.Client.Web;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// `clusterheap web` in a real browser: headless Chromium loads the heap map page served against an
/// embedded cluster, the test allocates through the cluster, and the page's DOM must show the new
/// spans within a second; hover and click show a span's class, occupancy and owner and a node's
/// MemStats; a node that leaves greys out with its reason.
/// </summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class WebMapTests(EmbeddedClusterFixture cluster)
{
    /// <summary>Resolves when <paramref name="condition"/> (a JS expression) holds, checked on every DOM change; rejects after <paramref name="seconds"/>.</summary>
    internal static string WaitFor(string condition, double seconds, string what) => $$"""
        new Promise((resolve, reject) => {
          const t0 = performance.now();
          const check = () => { try { return {{condition}}; } catch (e) { return false; } };
          if (check()) { resolve(0); return; }
          const observer = new MutationObserver(() => { if (check()) { observer.disconnect(); clearTimeout(timer); resolve(performance.now() - t0); } });
          observer.observe(document.body, { subtree: true, childList: true, attributes: true, characterData: true });
          const timer = setTimeout(() => { observer.disconnect(); reject(new Error({{System.Text.Json.JsonSerializer.Serialize($"not seen within {seconds} s: {what}")}})); }, {{(seconds * 1000).ToString(CultureInfo.InvariantCulture)}});
        })
        """;

    [BrowserFact]
    public async Task ThePageShowsNewSpansWithinASecondOfTheAllocation()
    {
        ClusterConnection connection = cluster.Connection;
        NodeInfo[] nodes = await connection.NodesAsync();
        await using var server = HeapMapServer.Start(connection, Endpoints.FreePorts(1)[0]);
        await using HeadlessChromium browser = await HeadlessChromium.LaunchAsync();
        BrowserPage page = await browser.OpenAsync(server.Url);

        // The first frames drew every node.
        await page.EvaluateAsync(WaitFor($"document.querySelectorAll('section.node').length === {nodes.Length} && Number(document.body.dataset.frames) >= 2", 30, "every node drawn"));

        // A large object (a span of its own) and a batch of 3 KiB objects on node1.
        const long LargeSize = 200_000, SmallSize = 3000;
        int smallClass = SizeClasses.ClassOf((nuint)SmallSize);
        HeapPointer large = await connection.MCache("node1").MallocAsync(LargeSize);
        MallocBatchResult batch = await connection.MCache("node1", 1).MallocBatchAsync(40, SmallSize);
        var allocated = Stopwatch.StartNew();
        Assert.Null(batch.Error);
        string largeStart = $"0x{large.Address:x}";
        ulong small = batch.Pointers[^1].Address;
        JsonNode? shown = await page.EvaluateAsync(WaitFor(
            $"document.querySelector('g.span[data-node=\"node1\"][data-start=\"{largeStart}\"][data-state=\"inuse\"][data-class=\"0\"]') !== null"
            + $" && [...document.querySelectorAll('g.span[data-node=\"node1\"][data-class=\"{smallClass}\"][data-state=\"inuse\"]')]"
            + $".some(g => {{ const s = BigInt(g.dataset.start); const a = BigInt('{small}'); return s <= a && a < s + BigInt(g.dataset.pages) * 8192n; }})",
            5, $"node1's large span at {largeStart} and the class-{smallClass} span holding 0x{small:x}"));
        allocated.Stop();
        Assert.True(allocated.Elapsed < TimeSpan.FromSeconds(1),
            $"the page showed the new spans {allocated.Elapsed.TotalMilliseconds:F0} ms after the allocation (in the page: {shown} ms after asked)");

        // Hovering the large span names its class, occupancy and owner.
        JsonNode? tip = await page.EvaluateAsync($$"""
            (() => {
              const rect = document.querySelector('g.span[data-node="node1"][data-start="{{largeStart}}"] rect');
              const box = rect.getBoundingClientRect();
              rect.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: box.left + 1, clientY: box.top + 1 }));
              return document.getElementById('tip').textContent;
            })()
            """);
        string tipText = tip!.GetValue<string>();
        Assert.Contains($"node1 {largeStart}", tipText, StringComparison.Ordinal);
        Assert.Contains("large object (class 0) · occupancy 100 %", tipText, StringComparison.Ordinal);
        Assert.Contains("owner: node1", tipText, StringComparison.Ordinal);

        // Clicking node1 shows its MemStats, with the large object counted.
        NodeStats stats = await connection.Node("node1").GetStatsAsync();
        await page.EvaluateAsync("document.querySelector('section.node[data-node=\"node1\"] h2').click()");
        await page.EvaluateAsync(WaitFor("document.getElementById('memstats').textContent.includes('MemStats of node1')", 5, "node1's MemStats panel"));
        string panel = (await page.EvaluateAsync("[...document.querySelectorAll('#memstats-table tr')].map(r => r.textContent).join('\\n')"))!.GetValue<string>();
        Assert.True(stats.LargeObjects >= 1, $"node1 has {stats.LargeObjects} large objects");
        Assert.Contains("LargeObjects", panel, StringComparison.Ordinal);
        Assert.Contains("Mallocs", panel, StringComparison.Ordinal);

        await connection.Node("node1").FreeBatchAsync(new PointerBatch([large, .. batch.Pointers]));
    }

    [BrowserFact]
    public async Task ANodeThatLeavesGreysOutAndThePageSaysWhy()
    {
        await using ClusterConnection connection = await ClusterConnection.OpenAsync(EmbeddedClusterFixture.Options with { Embedded = 2 });
        await using var server = HeapMapServer.Start(connection, Endpoints.FreePorts(1)[0]);
        await using HeadlessChromium browser = await HeadlessChromium.LaunchAsync();
        BrowserPage page = await browser.OpenAsync(server.Url);
        await page.EvaluateAsync(WaitFor("document.querySelectorAll('section.node').length === 2", 30, "both nodes drawn"));
        HeapPointer pointer = await connection.MCache("node1").MallocAsync(100_000);
        await page.EvaluateAsync(WaitFor($"document.querySelector('g.span[data-node=\"node1\"][data-start=\"0x{pointer.Address:x}\"]') !== null", 5, "node1's span"));
        Assert.False((await page.EvaluateAsync("document.querySelector('section.node[data-node=\"node1\"]').classList.contains('dead')"))!.GetValue<bool>());

        await connection.StopEmbeddedSiloAsync(1);

        await page.EvaluateAsync(WaitFor("document.querySelector('section.node[data-node=\"node1\"]').classList.contains('dead')", 60, "node1 greyed out"));
        JsonNode? reason = await page.EvaluateAsync("document.querySelector('section.node[data-node=\"node1\"] .reason').textContent");
        Assert.StartsWith("node node1 left the cluster", reason!.GetValue<string>(), StringComparison.Ordinal);
        Assert.Contains("slot", reason.GetValue<string>(), StringComparison.Ordinal);
        // Its last picture stays (greyed), and node0 is still live.
        Assert.True((await page.EvaluateAsync($"document.querySelector('g.span[data-node=\"node1\"][data-start=\"0x{pointer.Address:x}\"]') !== null"))!.GetValue<bool>());
        Assert.False((await page.EvaluateAsync("document.querySelector('section.node[data-node=\"node0\"]').classList.contains('dead')"))!.GetValue<bool>());
    }
}
