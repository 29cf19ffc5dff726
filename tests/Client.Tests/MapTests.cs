using System.Xml.Linq;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Render;
using ClusterHeap.Client.Shell;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>The heap map: SVG of the whole cluster and the terminal picture, on the live cluster and on made-up maps.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class MapTests(EmbeddedClusterFixture fixture)
{
    private const ulong Start = MadeMap.Start;
    private readonly ClusterConnection _c = fixture.Connection;

    private async Task<HeapMap[]> PopulatedMapsAsync()
    {
        foreach (NodeInfo n in await _c.NodesAsync())
            await _c.MCache(n.Name).MallocSizesAsync([.. Enumerable.Range(0, 300).Select(i => (long)(16 << (i % 8)))]);
        NodeInfo[] nodes = await _c.NodesAsync();
        return await Task.WhenAll(nodes.Select(n => _c.Node(n.Name).GetHeapMapAsync()));
    }

    private static HeapMap Made(params HeapMapRow[] rows) => MadeMap.Of("nodeT", 7, rows);

    [Fact]
    public async Task TheSvgIsValidXmlWithARectForEverySpanOfEveryNode()
    {
        HeapMap[] maps = await PopulatedMapsAsync();
        var svg = XDocument.Parse(SvgMap.Render(maps));
        XNamespace ns = "http://www.w3.org/2000/svg";
        Assert.Equal(ns + "svg", svg.Root!.Name);
        foreach (HeapMap map in maps)
        {
            XElement group = svg.Descendants(ns + "g").Single(g => (string?)g.Attribute("data-node") == map.Node);
            var rects = group.Elements(ns + "rect").Where(r => ((string?)r.Attribute("class"))?.StartsWith("span", StringComparison.Ordinal) == true).ToList();
            var starts = rects.Select(r => (string)r.Attribute("data-start")!).ToHashSet();
            Assert.Equal(map.Rows.Select(r => $"0x{r.Start:x12}").ToHashSet(), starts);
            Assert.True(rects.Count >= map.Rows.Length);
            Assert.All(rects, r => Assert.NotNull(r.Element(ns + "title")));
        }
        Assert.Single(svg.Descendants(ns + "g"), g => (string?)g.Attribute("class") == "legend");
    }

    [Fact]
    public async Task MapSvgThroughTheShellWritesAFileForTheWholeCluster()
    {
        await PopulatedMapsAsync();
        string file = Path.Combine(Path.GetTempPath(), $"clusterheap-map-{Guid.NewGuid():N}.svg");
        try
        {
            (int exit, string output, string error) = await fixture.RunCliAsync("map", "--svg", file);
            Assert.True(exit == 0, error);
            Assert.Contains($"wrote {file}: 3 node(s)", output);
            var svg = XDocument.Load(file);
            Assert.Equal(3, svg.Descendants().Count(e => e.Attribute("data-node") is not null));
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public void ASpanThatWrapsARowIsDrawnAsOneRectPerRowAndStatesHaveTheirOwnStyle()
    {
        HeapMap map = Made(
            new HeapMapRow(0, 100, 0, 1, 1, MapState.InUse),
            new HeapMapRow(0, 1, 5, 128, 64, MapState.Leased),
            new HeapMapRow(0, 2, 0, 0, 0, MapState.Free),
            new HeapMapRow(0, 3, 0, 0, 0, MapState.Released));
        var svg = XDocument.Parse(SvgMap.Render([map]));
        var rects = svg.Descendants().Where(e => e.Name.LocalName == "rect" && ((string?)e.Attribute("class"))?.StartsWith("span", StringComparison.Ordinal) == true).ToList();
        Assert.Equal(2, rects.Count(r => (string?)r.Attribute("data-start") == $"0x{Start:x12}")); // 100 pages, 64 per row
        Assert.Equal("url(#released)", (string?)rects.Single(r => ((string)r.Attribute("class")!).EndsWith("released", StringComparison.Ordinal)).Attribute("fill"));
        Assert.Equal("#202020", (string?)rects.Single(r => ((string)r.Attribute("class")!).EndsWith("leased", StringComparison.Ordinal) && !((string)r.Attribute("class")!).EndsWith("released", StringComparison.Ordinal)).Attribute("stroke"));
        Assert.Equal(MapPalette.Free.Hex, (string?)rects.Single(r => ((string)r.Attribute("class")!).EndsWith("free", StringComparison.Ordinal)).Attribute("fill"));
    }

    [Fact]
    public void TheTerminalMapShadesOccupancyAndShowsLeasedFreeAndReleasedPages()
    {
        HeapMap map = Made(
            new HeapMapRow(0, 1, 5, 128, 128, MapState.InUse),
            new HeapMapRow(0, 1, 5, 128, 10, MapState.InUse),
            new HeapMapRow(0, 1, 5, 128, 50, MapState.InUse),
            new HeapMapRow(0, 1, 9, 100, 70, MapState.InUse),
            new HeapMapRow(0, 1, 5, 128, 64, MapState.Leased),
            new HeapMapRow(0, 2, 0, 0, 0, MapState.Free),
            new HeapMapRow(0, 3, 0, 0, 0, MapState.Released));
        var output = new StringWriter();
        TerminalMap.Write(output, [map], color: false);
        string text = output.ToString();
        Assert.Contains($"0x{Start:x12} █░▒▓▚··---", text);
        Assert.Contains("nodeT (slot 7)", text);
        Assert.Contains("size classes: █5:48 B █9:112 B", text);
        Assert.DoesNotContain("\u001b[", text);
    }

    [Fact]
    public async Task TheShellMapDrawsEveryNodeInColourWithALegend()
    {
        await PopulatedMapsAsync();
        var output = new StringWriter();
        var session = new ShellSession(_c, output, color: true);
        Assert.True(await session.ExecuteAsync("map --width 48"));
        string text = output.ToString();
        Assert.Equal(0, session.Failures);
        foreach (string n in new[] { "node0 (slot", "node1 (slot", "node2 (slot" }) Assert.Contains(n, text);
        Assert.Contains("\u001b[38;2;", text);
        Assert.Contains("legend: ░ ▒ ▓ █ in use", text);
        // Grid rows: an address, then at most 48 cells.
        var rows = text.Split('\n').Where(l => l.StartsWith("  0x", StringComparison.Ordinal)).ToList();
        Assert.NotEmpty(rows);
        Assert.All(rows, r => Assert.InRange(System.Text.RegularExpressions.Regex.Replace(r, "\u001b\\[[0-9;]*m", "").TrimEnd().Length, 18, 17 + 48));
    }
}
