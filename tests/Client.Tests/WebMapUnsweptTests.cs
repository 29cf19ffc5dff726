using System.Text.Json.Nodes;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Tests.Browser;
using ClusterHeap.Client.Web;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// `clusterheap web` in headless Chromium shows the spans a node's collection left to sweep: a one-node embedded
/// cluster with the background sweeper off (so the test, not a race with the sweeper, decides when the sweep
/// happens) runs its node's collector over the client's unrooted objects; the page marks their spans unswept,
/// and once the sweep finishes they are gone.
/// </summary>
public sealed class WebMapUnsweptTests
{
    [BrowserFact]
    public async Task ThePageShowsTheSpansACollectionLeftUnsweptUntilTheSweepFreesThem()
    {
        await using ClusterConnection connection = await ClusterConnection.OpenAsync(
            EmbeddedClusterFixture.Options with { Embedded = 1, ConfigureNodes = h => h.BackgroundSweeper = false });
        await using var server = HeapMapServer.Start(connection, Endpoints.FreePorts(1)[0]);
        await using HeadlessChromium browser = await HeadlessChromium.LaunchAsync();
        BrowserPage page = await browser.OpenAsync(server.Url);
        await page.EvaluateAsync(WebMapTests.WaitFor("document.querySelectorAll('section.node').length === 1", 30, "node0 drawn"));
        Assert.Contains("unswept", (await page.EvaluateAsync("document.getElementById('legend').textContent"))!.GetValue<string>(), StringComparison.Ordinal);

        HeapPointer large = await connection.MCache("node0").MallocAsync(200_000);
        MallocBatchResult batch = await connection.MCache("node0", 1).MallocBatchAsync(40, 3000);
        Assert.Null(batch.Error);
        string largeSpan = $"g.span[data-node=\"node0\"][data-start=\"0x{large.Address:x}\"]";
        ulong small = batch.Pointers[^1].Address;
        string smallSpan = $"[...document.querySelectorAll('g.span[data-node=\"node0\"][data-state=\"unswept\"]')]"
            + $".some(g => {{ const s = BigInt(g.dataset.start); const a = BigInt('{small}'); return s <= a && a < s + BigInt(g.dataset.pages) * 8192n; }})";
        await page.EvaluateAsync(WebMapTests.WaitFor($"document.querySelector('{largeSpan}[data-state=\"inuse\"]') !== null", 5, "the large span, in use"));
        Assert.False((await page.EvaluateAsync($"document.querySelector('g.span[data-state=\"unswept\"]') !== null"))!.GetValue<bool>());

        // The node's collector: no root set holds the client's objects, so the mark reaches none of them.
        NodeHeap heap = connection.EmbeddedHeap(0);
        heap.Collect();

        await page.EvaluateAsync(WebMapTests.WaitFor(
            $"document.querySelector('{largeSpan}[data-state=\"unswept\"]') !== null && {smallSpan}", 5,
            $"the large span at 0x{large.Address:x} and the span holding 0x{small:x}, unswept"));
        JsonNode? tip = await page.EvaluateAsync($$"""
            (() => {
              const rect = document.querySelector('{{largeSpan}} rect');
              const box = rect.getBoundingClientRect();
              rect.dispatchEvent(new MouseEvent('mousemove', { bubbles: true, clientX: box.left + 1, clientY: box.top + 1 }));
              return document.getElementById('tip').textContent;
            })()
            """);
        Assert.Contains("unswept", tip!.GetValue<string>(), StringComparison.Ordinal);
        Assert.True((await page.EvaluateAsync($"document.querySelector('{largeSpan}').querySelector('rect[fill=\"url(#unswept)\"]') !== null"))!.GetValue<bool>());

        heap.FinishSweep();

        await page.EvaluateAsync(WebMapTests.WaitFor(
            $"document.querySelector('g.span[data-state=\"unswept\"]') === null && document.querySelector('{largeSpan}[data-state=\"inuse\"]') === null", 5,
            "no unswept span left, the large object's span no longer in use"));
    }
}
