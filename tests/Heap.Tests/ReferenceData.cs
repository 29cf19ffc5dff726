using System.Globalization;

namespace ClusterHeap.Heap.Tests;

/// <summary>
/// Loads Go's size-class tables from <c>Reference/</c>, which the test project copies next to its
/// binaries (see <c>tests/Heap.Tests/Reference/README.md</c>); <c>CLUSTERHEAP_REFERENCE</c> names another
/// folder with the same files.
/// </summary>
internal static class ReferenceData
{
    private const string MarkerFile = "go-sizeclasses.tsv";

    private static readonly Lazy<string> LazyDirectory = new(Locate);

    public static string Directory => LazyDirectory.Value;

    /// <summary>One row of go-sizeclasses.tsv; the waste percent stays text, as Go printed it.</summary>
    public sealed record SizeClassRow(int Class, int BytesPerObject, int BytesPerSpan, int Objects, int TailWaste, string MaxWastePercent);

    public static IReadOnlyList<SizeClassRow> SizeClasses() =>
        [.. ReadLines("go-sizeclasses.tsv")
            .Skip(1) // header
            .Where(line => line.Length > 0)
            .Select(line =>
            {
                string[] f = line.Split('\t');
                Assert.True(f.Length == 6, $"go-sizeclasses.tsv: expected 6 columns in '{line}'");
                return new SizeClassRow(Int(f[0]), Int(f[1]), Int(f[2]), Int(f[3]), Int(f[4]), f[5].Trim());
            })];

    public static IReadOnlyList<int> SizeToClass8() => ReadInts("go-size-to-class8.txt");

    public static IReadOnlyList<int> SizeToClass128() => ReadInts("go-size-to-class128.txt");

    private static int[] ReadInts(string file) =>
        [.. string.Join(' ', ReadLines(file))
            .Split((char[])[' ', '\t'], StringSplitOptions.RemoveEmptyEntries)
            .Select(Int)];

    private static string[] ReadLines(string file) => File.ReadAllLines(Path.Combine(Directory, file));

    private static int Int(string s) => int.Parse(s.Trim(), NumberStyles.Integer, CultureInfo.InvariantCulture);

    private static string Locate()
    {
        string? overridden = Environment.GetEnvironmentVariable("CLUSTERHEAP_REFERENCE");
        string directory = string.IsNullOrEmpty(overridden) ? Path.Combine(AppContext.BaseDirectory, "Reference") : overridden;
        return File.Exists(Path.Combine(directory, MarkerFile))
            ? directory
            : throw new InvalidOperationException(
                $"Go reference data not found: {directory} does not contain {MarkerFile} " +
                (string.IsNullOrEmpty(overridden) ? "(the test project copies tests/Heap.Tests/Reference there)." : "(from CLUSTERHEAP_REFERENCE)."));
    }
}
