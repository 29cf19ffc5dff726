using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap stress WORKLOAD [options]`: runs a workload of bench/WORKLOADS.md with cookie checks, prints the
/// report (and writes it as JSON with --json FILE). Exit code 0 when it passed, 1 on any cookie failure or
/// unexpected error (lost objects of a dead node and grow-shrink's out of memory are expected).
/// </summary>
public static class StressCommand
{
    /// <summary>The CLI's entry: exit code 0 when the run passed, 1 otherwise.</summary>
    public static async Task<int> RunAsync(StressOptions options, ClusterConnection connection, TextWriter output, bool terminal) =>
        (await RunReportAsync(options, connection, output, terminal)).Passed ? 0 : 1;

    /// <summary>Runs, prints the report, writes the JSON file when asked; the report says whether it passed.</summary>
    public static async Task<StressReport> RunReportAsync(StressOptions options, ClusterConnection connection, TextWriter output, bool terminal = false)
    {
        output.WriteLine($"stress {options.Workload} on {connection.Description}: " +
            (options.Ops > 0 ? $"{options.Ops} ops" : $"{options.Duration.TotalSeconds:0.#} s") + $", batch {options.Batch}");
        StressReport report = await StressRunner.RunAsync(connection, options, output, terminal);
        report.WriteText(output);
        if (options.Json is not null)
        {
            await File.WriteAllTextAsync(options.Json, report.ToJson());
            output.WriteLine($"wrote {options.Json}");
        }
        return report;
    }
}
