using System.Text;
using ClusterHeap.Client.Cli;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Render;

/// <summary>
/// The heap map in a terminal: for each node a grid of cells over its arena (from arena start to the
/// highest mapped page), each cell a fixed number of pages. A cell shows the span that covers most of
/// it: a block shaded by occupancy (░ ▒ ▓ █) in the size class's colour, ▚ for a span leased to another
/// node, ╳ for a span the last collection left to sweep, · for a free run still committed and - for pages released to the OS. Without colour the
/// characters alone still tell occupancy, leases, free and released.
/// </summary>
public static class TerminalMap
{
    public const int DefaultWidth = 64;
    private const int MaxRows = 16;
    private const char FreeChar = '·', ReleasedChar = '-', LeasedChar = '▚', UnsweptChar = '╳';
    private const int States = (int)MapState.Unswept + 1;
    private static readonly char[] Shades = ['░', '▒', '▓', '█'];

    private readonly record struct Cell(MapState State, int SizeClass, double Occupancy);

    public static void Write(TextWriter output, IReadOnlyList<HeapMap> maps, bool color, int width = DefaultWidth)
    {
        var classes = new SortedSet<int>();
        foreach (HeapMap map in maps)
        {
            WriteNode(output, map, color, width);
            foreach (HeapMapRow r in map.Rows)
                if (r.State is MapState.InUse or MapState.Leased or MapState.Unswept) classes.Add(r.SizeClass);
        }
        WriteLegend(output, classes, color, width);
    }

    private static void WriteNode(TextWriter output, HeapMap map, bool color, int width)
    {
        long pages = (long)(map.ArenaUsed - map.ArenaStart) / map.PageSize;
        long perCell = Math.Max(1, (pages + (long)width * MaxRows - 1) / ((long)width * MaxRows));
        long inUse = map.Rows.Where(r => r.State is MapState.InUse or MapState.Leased or MapState.Unswept).Sum(r => (long)r.Pages);
        output.WriteLine($"{map.Node} (slot {map.Slot})  arena 0x{map.ArenaStart:x12}  mapped {ByteSize.Format(pages * map.PageSize)} of {ByteSize.Format((long)(map.ArenaEnd - map.ArenaStart))}, " +
            $"{map.Rows.Length} spans, {ByteSize.Format(inUse * map.PageSize)} in use; 1 cell = {perCell} page{(perCell == 1 ? "" : "s")} ({ByteSize.Format(perCell * map.PageSize)})");
        if (pages == 0)
        {
            output.WriteLine("  (nothing mapped yet)");
            return;
        }
        Cell[] cells = Cells(map, pages, perCell);
        for (int row = 0; row * width < cells.Length; row++)
        {
            var line = new StringBuilder();
            line.Append($"  0x{map.ArenaStart + (ulong)(row * width * perCell * map.PageSize):x12} ");
            string? current = null;
            for (int i = row * width; i < Math.Min(cells.Length, (row + 1) * width); i++)
            {
                Cell c = cells[i];
                if (color)
                {
                    string esc = Escape(c);
                    if (esc != current) line.Append(esc);
                    current = esc;
                }
                line.Append(Char(c));
            }
            if (color) line.Append("\u001b[0m");
            output.WriteLine(line.ToString());
        }
    }

    private static Cell[] Cells(HeapMap map, long pages, long perCell)
    {
        int n = (int)((pages + perCell - 1) / perCell);
        var cells = new Cell[n];
        // Per cell: pages of each state, pages of each class, occupancy weighted by pages.
        long[,] statePages = new long[n, States];
        var classPages = new Dictionary<int, long>[n];
        double[] occupied = new double[n];
        long[] counted = new long[n];
        foreach (HeapMapRow r in map.Rows)
        {
            long first = (long)(r.Start - map.ArenaStart) / map.PageSize;
            for (long p = Math.Max(0, first); p < Math.Min(pages, first + r.Pages); p++)
            {
                int i = (int)(p / perCell);
                statePages[i, (int)r.State]++;
                if (r.State is MapState.InUse or MapState.Leased or MapState.Unswept)
                {
                    (classPages[i] ??= [])[r.SizeClass] = classPages[i].GetValueOrDefault(r.SizeClass) + 1;
                    occupied[i] += r.Objects == 0 ? 0 : (double)r.Live / r.Objects;
                    counted[i]++;
                }
            }
        }
        for (int i = 0; i < n; i++)
        {
            var state = (MapState)Enumerable.Range(0, States).MaxBy(s => statePages[i, s]);
            if (state is MapState.InUse or MapState.Leased or MapState.Unswept && classPages[i] is { } byClass)
                cells[i] = new Cell(state, byClass.MaxBy(kv => kv.Value).Key, occupied[i] / counted[i]);
            else
                cells[i] = new Cell(state is MapState.InUse or MapState.Leased or MapState.Unswept ? MapState.Free : state, 0, 0);
        }
        return cells;
    }

    private static char Char(Cell c) => c.State switch
    {
        MapState.Free => FreeChar,
        MapState.Released => ReleasedChar,
        MapState.Leased => LeasedChar,
        MapState.Unswept => UnsweptChar,
        _ => Shades[Math.Min(3, (int)(c.Occupancy * 4))],
    };

    private static string Escape(Cell c) => c.State switch
    {
        MapState.Free => Fg(MapPalette.Free),
        MapState.Released => Fg(MapPalette.Released),
        _ => Fg(MapPalette.Span(c.SizeClass, 0.35 + 0.65 * c.Occupancy)),
    };

    private static string Fg(MapPalette.Rgb c) => $"\u001b[38;2;{c.R};{c.G};{c.B}m";

    private static void WriteLegend(TextWriter output, IEnumerable<int> classes, bool color, int width)
    {
        output.WriteLine($"legend: {string.Join(" ", Shades)} in use, occupancy <25% <50% <75% >=75%;  {LeasedChar} leased to another node;  {UnsweptChar} unswept (the last collection's garbage not yet freed);  {FreeChar} free (committed);  {ReleasedChar} released to the OS");
        var line = new StringBuilder("size classes:");
        int length = line.Length;
        foreach (int c in classes)
        {
            string label = $" {(color ? Fg(MapPalette.Class(c)) : "")}█{(color ? "\u001b[0m" : "")}{c}:{MapPalette.Describe(c)}";
            int visible = 2 + c.ToString(System.Globalization.CultureInfo.InvariantCulture).Length + 1 + MapPalette.Describe(c).Length;
            if (length + visible > width + 16)
            {
                output.WriteLine(line.ToString());
                line.Clear().Append("             ");
                length = line.Length;
            }
            line.Append(label);
            length += visible;
        }
        output.WriteLine(line.ToString());
    }
}
