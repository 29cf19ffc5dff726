using System.Xml.Linq;
using ClusterHeap.Client.Render;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>The terminal and SVG maps draw a span the last collection left to sweep apart from a swept one, and say so in the legend.</summary>
public sealed class UnsweptMapTests
{
    private const ulong Start = MadeMap.Start;

    private static HeapMap Made(params HeapMapRow[] rows) => MadeMap.Of("nodeU", 3, rows);

    [Fact]
    public void TheTerminalMapDrawsUnsweptSpansAsCrossesAndNamesThemInTheLegend()
    {
        HeapMap map = Made(
            new HeapMapRow(0, 1, 5, 128, 128, MapState.InUse),
            new HeapMapRow(0, 2, 5, 128, 100, MapState.Unswept),
            new HeapMapRow(0, 1, 0, 0, 0, MapState.Free));
        var output = new StringWriter();
        TerminalMap.Write(output, [map], color: false);
        string text = output.ToString();
        Assert.Contains($"0x{Start:x12} █╳╳·", text);
        Assert.Contains("╳ unswept", text);
        Assert.Contains("size classes: █5:48 B", text);   // an unswept span's class is in the legend too
    }

    [Fact]
    public void TheSvgOutlinesUnsweptSpansDashedInTheirClassColourAndNamesThemInTheLegend()
    {
        HeapMap map = Made(
            new HeapMapRow(0, 1, 5, 128, 64, MapState.InUse),
            new HeapMapRow(0, 1, 5, 128, 64, MapState.Unswept));
        var svg = XDocument.Parse(SvgMap.Render([map]));
        var rects = svg.Descendants().Where(e => e.Name.LocalName == "rect" && ((string?)e.Attribute("class"))?.StartsWith("span", StringComparison.Ordinal) == true).ToList();
        XElement unswept = rects.Single(r => (string?)r.Attribute("class") == "span unswept");
        XElement inUse = rects.Single(r => (string?)r.Attribute("class") == "span inuse");
        Assert.Equal((string?)inUse.Attribute("fill"), (string?)unswept.Attribute("fill"));   // same class, same occupancy
        Assert.Equal(MapPalette.Unswept.Hex, (string?)unswept.Attribute("stroke"));
        Assert.NotNull(unswept.Attribute("stroke-dasharray"));
        Assert.Null(inUse.Attribute("stroke-dasharray"));
        Assert.Contains("unswept", unswept.Value, StringComparison.Ordinal);                     // its tooltip
        Assert.Contains(svg.Descendants().Where(e => e.Name.LocalName == "text"), t => t.Value.StartsWith("unswept", StringComparison.Ordinal));
    }
}
