namespace ClusterHeap.Client.Render;

/// <summary>A plain text table: a header row and columns padded to fit; numbers right-aligned.</summary>
public sealed class Table(params string[] header)
{
    private readonly List<string[]> _rows = [header];

    public Table Add(params object[] cells)
    {
        _rows.Add([.. cells.Select(c => c?.ToString() ?? "")]);
        return this;
    }

    public void WriteTo(TextWriter output, string indent = "")
    {
        int cols = _rows.Max(r => r.Length);
        int[] width = new int[cols];
        foreach (string[] r in _rows)
            for (int i = 0; i < r.Length; i++) width[i] = Math.Max(width[i], r[i].Length);
        foreach (string[] r in _rows)
        {
            IEnumerable<string> cells = r.Select((c, i) => IsNumeric(c) && r != _rows[0] ? c.PadLeft(width[i]) : c.PadRight(width[i]));
            output.WriteLine(indent + string.Join("  ", cells).TrimEnd());
        }
    }

    private static bool IsNumeric(string c) => c.Length > 0 && (char.IsDigit(c[0]) || (c[0] == '-' && c.Length > 1)) && !c.StartsWith("0x", StringComparison.Ordinal);
}
