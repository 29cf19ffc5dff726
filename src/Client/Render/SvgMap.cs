using System.Globalization;
using System.Security;
using System.Text;
using ClusterHeap.Client.Cli;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Render;

/// <summary>
/// The heap map of the whole cluster as an SVG picture: one panel per node, the arena's mapped pages
/// laid out left to right and top to bottom, one rect per span (two or more when a span wraps a row),
/// filled with its size class's colour and shaded by occupancy; free runs pale grey, released pages
/// hatched, leased spans outlined, spans the last collection left to sweep outlined dashed orange. Each rect has a tooltip and <c>data-*</c> attributes naming the span.
/// </summary>
public static class SvgMap
{
    private const double Width = 1024, Margin = 24, RowHeight = 14, RowGap = 2, LabelWidth = 110;
    private const int MaxRows = 40;

    public static string Render(IReadOnlyList<HeapMap> maps)
    {
        var body = new StringBuilder();
        double y = 56;
        var classes = new SortedSet<int>();
        foreach (HeapMap map in maps)
        {
            y = Panel(body, map, y);
            foreach (HeapMapRow r in map.Rows)
                if (r.State is MapState.InUse or MapState.Leased or MapState.Unswept) classes.Add(r.SizeClass);
        }
        y = Legend(body, classes, y + 8);

        double total = Margin + LabelWidth + Width + Margin;
        var svg = new StringBuilder();
        svg.Append(CultureInfo.InvariantCulture, $"""<svg xmlns="http://www.w3.org/2000/svg" width="{total:0}" height="{y + Margin:0}" viewBox="0 0 {total:0} {y + Margin:0}" font-family="DejaVu Sans, Helvetica, Arial, sans-serif">""").Append('\n');
        svg.Append("""
            <defs>
              <pattern id="released" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">
                <rect width="6" height="6" fill="#f4f4f4"/><line x1="0" y1="0" x2="0" y2="6" stroke="#9a9a9a" stroke-width="2"/>
              </pattern>
            </defs>
            <rect width="100%" height="100%" fill="#ffffff"/>

            """);
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="30" font-size="18" font-weight="bold" fill="#222">ClusterHeap heap map: {maps.Count} node{(maps.Count == 1 ? "" : "s")}, {maps.Sum(m => m.Rows.Length)} spans</text>""").Append('\n');
        svg.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="46" font-size="11" fill="#555">colour = size class (blue small … red 32 KiB, magenta large), depth = occupancy, grey = free, hatched = released to the OS, dark outline = leased to another node, dashed orange outline = unswept</text>""").Append('\n');
        svg.Append(body);
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    private static double Panel(StringBuilder s, HeapMap map, double y)
    {
        long pages = (long)(map.ArenaUsed - map.ArenaStart) / map.PageSize;
        long perRow = 64;
        while (pages > perRow * MaxRows) perRow *= 2;
        double px = Width / perRow;
        long inUse = map.Rows.Where(r => r.State is MapState.InUse or MapState.Leased or MapState.Unswept).Sum(r => (long)r.Pages);
        s.Append(CultureInfo.InvariantCulture, $"""<g class="node" data-node="{Esc(map.Node)}">""").Append('\n');
        s.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{y + 14}" font-size="14" font-weight="bold" fill="#222">{Esc(map.Node)}</text>""");
        s.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin + 90}" y="{y + 14}" font-size="12" fill="#444">slot {map.Slot} · arena 0x{map.ArenaStart:x12} · mapped {ByteSize.Format(pages * map.PageSize)} of {ByteSize.Format((long)(map.ArenaEnd - map.ArenaStart))} · {map.Rows.Length} spans · {ByteSize.Format(inUse * map.PageSize)} in use · row = {ByteSize.Format(perRow * map.PageSize)}</text>""").Append('\n');
        y += 22;
        long rows = Math.Max(1, (pages + perRow - 1) / perRow);
        for (long r = 0; r < rows; r++)
        {
            s.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{y + r * (RowHeight + RowGap) + 10.5:0.##}" font-size="9" fill="#777" font-family="DejaVu Sans Mono, monospace">0x{map.ArenaStart + (ulong)(r * perRow * map.PageSize):x12}</text>""").Append('\n');
        }
        double x0 = Margin + LabelWidth;
        foreach (HeapMapRow row in map.Rows)
        {
            long first = (long)(row.Start - map.ArenaStart) / map.PageSize;
            long end = Math.Min(first + row.Pages, Math.Max(pages, first + row.Pages));
            (string fill, string stroke, string kind) = Style(row);
            string tip = Tip(map, row);
            // A span that wraps a row is drawn as one rect per row it touches.
            for (long p = first; p < end;)
            {
                long r = p / perRow;
                long stop = Math.Min(end, (r + 1) * perRow);
                double x = x0 + (p - r * perRow) * px, w = (stop - p) * px, yy = y + r * (RowHeight + RowGap);
                s.Append(CultureInfo.InvariantCulture,
                    $"""<rect class="span {kind}" data-start="0x{row.Start:x12}" data-class="{row.SizeClass}" data-pages="{row.Pages}" x="{x:0.###}" y="{yy:0.##}" width="{w:0.###}" height="{RowHeight}" fill="{fill}" stroke="{stroke}" stroke-width="{StrokeWidth(kind)}"{(kind == "unswept" ? " stroke-dasharray=\"2 1.5\"" : "")}><title>{tip}</title></rect>""").Append('\n');
                p = stop;
            }
        }
        s.Append("</g>\n");
        return y + rows * (RowHeight + RowGap) + 18;
    }

    private static (string Fill, string Stroke, string Kind) Style(HeapMapRow r) => r.State switch
    {
        MapState.Free => (MapPalette.Free.Hex, "#ffffff", "free"),
        MapState.Released => ("url(#released)", "#ffffff", "released"),
        MapState.Leased => (MapPalette.Span(r.SizeClass, Occupancy(r)).Hex, "#202020", "leased"),
        MapState.Unswept => (MapPalette.Span(r.SizeClass, Occupancy(r)).Hex, MapPalette.Unswept.Hex, "unswept"),
        _ => (MapPalette.Span(r.SizeClass, Occupancy(r)).Hex, "#ffffff", "inuse"),
    };

    private static double StrokeWidth(string kind) => kind switch { "leased" => 1.2, "unswept" => 1.6, _ => 0.4 };

    private static double Occupancy(HeapMapRow r) => r.Objects == 0 ? 0 : (double)r.Live / r.Objects;

    private static string Tip(HeapMap map, HeapMapRow r)
    {
        string what = r.State switch
        {
            MapState.Free => "free run",
            MapState.Released => "released to the OS",
            _ => $"class {r.SizeClass} ({MapPalette.Describe(r.SizeClass)}), {r.Live}/{r.Objects} objects{r.State switch { MapState.Leased => ", leased", MapState.Unswept => ", unswept (its unreached objects not yet freed)", _ => "" }}",
        };
        return Esc($"{map.Node} 0x{r.Start:x12}: {r.Pages} page{(r.Pages == 1 ? "" : "s")}, {what}");
    }

    private static double Legend(StringBuilder s, IEnumerable<int> classes, double y)
    {
        s.Append("<g class=\"legend\">\n");
        s.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{y + 12}" font-size="12" font-weight="bold" fill="#222">size classes</text>""").Append('\n');
        double x = Margin + LabelWidth;
        double yy = y;
        foreach (int c in classes)
        {
            string label = $"{c}: {MapPalette.Describe(c)}";
            double w = 22 + label.Length * 6.4;
            if (x + w > Margin + LabelWidth + Width)
            {
                x = Margin + LabelWidth;
                yy += 18;
            }
            s.Append(CultureInfo.InvariantCulture, $"""<rect x="{x:0.#}" y="{yy + 2}" width="14" height="12" fill="{MapPalette.Class(c).Hex}"/><text x="{x + 18:0.#}" y="{yy + 12}" font-size="11" fill="#333">{Esc(label)}</text>""").Append('\n');
            x += w;
        }
        yy += 26;
        s.Append(CultureInfo.InvariantCulture, $"""<text x="{Margin}" y="{yy + 12}" font-size="12" font-weight="bold" fill="#222">occupancy</text>""").Append('\n');
        x = Margin + LabelWidth;
        foreach (double o in new[] { 0.0, 0.25, 0.5, 0.75, 1.0 })
        {
            s.Append(CultureInfo.InvariantCulture, $"""<rect x="{x:0.#}" y="{yy + 2}" width="14" height="12" fill="{MapPalette.Span(20, o).Hex}"/><text x="{x + 18:0.#}" y="{yy + 12}" font-size="11" fill="#333">{o * 100:0} %</text>""").Append('\n');
            x += 60;
        }
        x += 20;
        s.Append(CultureInfo.InvariantCulture, $"""<rect x="{x:0.#}" y="{yy + 2}" width="14" height="12" fill="{MapPalette.Free.Hex}"/><text x="{x + 18:0.#}" y="{yy + 12}" font-size="11" fill="#333">free (committed)</text>""").Append('\n');
        x += 120;
        s.Append(CultureInfo.InvariantCulture, $"""<rect x="{x:0.#}" y="{yy + 2}" width="14" height="12" fill="url(#released)" stroke="#9a9a9a" stroke-width="0.5"/><text x="{x + 18:0.#}" y="{yy + 12}" font-size="11" fill="#333">released to the OS</text>""").Append('\n');
        x += 130;
        s.Append(CultureInfo.InvariantCulture, $"""<rect x="{x:0.#}" y="{yy + 2}" width="14" height="12" fill="{MapPalette.Span(20, 0.7).Hex}" stroke="#202020" stroke-width="1.2"/><text x="{x + 18:0.#}" y="{yy + 12}" font-size="11" fill="#333">leased to another node</text>""").Append('\n');
        x += 150;
        s.Append(CultureInfo.InvariantCulture, $"""<rect x="{x:0.#}" y="{yy + 2}" width="14" height="12" fill="{MapPalette.Span(20, 0.7).Hex}" stroke="{MapPalette.Unswept.Hex}" stroke-width="1.6" stroke-dasharray="2 1.5"/><text x="{x + 18:0.#}" y="{yy + 12}" font-size="11" fill="#333">unswept (garbage not yet freed)</text>""").Append('\n');
        s.Append("</g>\n");
        return yy + 20;
    }

    private static string Esc(string text) => SecurityElement.Escape(text) ?? "";
}
