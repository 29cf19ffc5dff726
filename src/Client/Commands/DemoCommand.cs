using System.Diagnostics;
using System.Globalization;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Render;
using ClusterHeap.Client.Shell;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap demo`: the README's first command. Starts an embedded cluster (or joins one given by the
/// connection options), runs a short larson stress with cookie checks and prints its report, leaves a
/// mixed heap behind so the map has something to show, draws the map, prints the cluster stats and runs
/// the verifier. About 20 s on a 2-core machine. Exit code 1 if the stress run or the verifier failed.
/// </summary>
public static class DemoCommand
{
    public static Command Create(CliContext cli)
    {
        Option<TimeSpan> duration = Symbols.Duration("--duration", "length of the stress run", TimeSpan.FromSeconds(5));
        Option<string> workload = new Option<string>("--workload") { Description = "the stress workload", HelpName = "WORKLOAD", DefaultValueFactory = _ => "larson" }
            .AcceptOnlyFromAmong(StressOptions.Workloads);
        Option<string?> svg = new("--svg") { Description = "also draw the map as an SVG picture into FILE", HelpName = "FILE" };
        Command command = CommandTree.New("demo",
            "Start an embedded cluster (or join the one the connection options name), run a short stress test with " +
            "cookie checks, leave a mixed heap behind, and show the map, the cluster stats and the verifier (~15 s).",
            "clusterheap demo", "clusterheap demo --duration 10s --svg heap.svg")
            .With(duration, workload, svg);
        command.SetAction((r, _) => RunAsync(cli, cli.Connection.Read(r), r.Get(duration), r.GetValue(workload)!, r.Get(svg), cli.Colour(r)));
        return command;
    }

    public static async Task<int> RunAsync(CliContext cli, ConnectOptions options, TimeSpan duration, string workload, string? svg, bool color)
    {
        TextWriter output = cli.Output;
        CancellationToken interrupt = cli.Interruptible();
        var clock = Stopwatch.StartNew();
        output.WriteLine(options.IsEmbedded ? $"== starting an embedded cluster of {options.Embedded} silos (real Orleans silos on loopback ports, one node heap each)" : "== connecting");
        return await Program.WithClusterAsync(options, cli, async connection =>
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture, $"   up in {clock.Elapsed.TotalSeconds:0.0} s: {connection.Description}"));
            StatsText.Nodes(output, await connection.NodesAsync());

            output.WriteLine();
            output.WriteLine($"== stress {workload}: every object carries a cookie, checked before it is freed and at the end");
            var stress = new StressOptions
            {
                Workload = workload,
                Duration = duration,
                Slots = 2000,
                Handoff = 2000, // short run: workers hop nodes often, so frees land on objects allocated elsewhere
            };
            StressReport report = await StressCommand.RunReportAsync(stress, connection, output, cli.Terminal, interrupt);
            if (report.Interrupted) return ExitCodes.Interrupted;

            output.WriteLine();
            output.WriteLine("== leaving a mixed heap behind for the map (objects of 16 B to 96 KiB on every node, about 40 % of them freed)");
            await MixedHeapAsync(connection, output);

            var session = new ShellSession(connection, output, color);
            output.WriteLine();
            output.WriteLine("== map: each node's arena, spans coloured by size class and shaded by occupancy");
            await session.ExecuteAsync("map");
            if (svg is not null) await session.ExecuteAsync($"map --svg \"{svg}\"");
            output.WriteLine();
            output.WriteLine("== cluster stats");
            await session.ExecuteAsync("stats");
            output.WriteLine();
            output.WriteLine("== verify: the heap invariants of docs/DESIGN.md section 6 on every node and the cluster tier");
            bool verified = await session.VerifyAsync();
            output.WriteLine();
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"demo {(report.Passed && verified ? "passed" : "FAILED")} in {clock.Elapsed.TotalSeconds:0.0} s. Next: `clusterheap shell`, `clusterheap stress larson --duration 20s`, `clusterheap map --svg heap.svg`"));
            return report.Passed && verified && session.Failures == 0 ? ExitCodes.Ok : ExitCodes.Failed;
        }, interrupt);
    }

    private static async Task MixedHeapAsync(ClusterConnection connection, TextWriter output)
    {
        long[] small = [16, 24, 48, 64, 128, 256, 512], medium = [1024, 2048, 4096, 9472], large = [32768, 98304];
        NodeInfo[] nodes = await connection.NodesAsync();
        var rng = new XorShift(7);
        long kept = 0;
        foreach (NodeInfo node in nodes)
        {
            // Mostly small objects, some medium, a few large; each node favours a different small size.
            long Draw() => rng.Below(100) switch
            {
                < 35 => small[(node.Slot * 2) % small.Length],
                < 80 => small[rng.Below(small.Length)],
                < 97 => medium[rng.Below(medium.Length)],
                _ => large[rng.Below(large.Length)],
            };
            long[] draw = [.. Enumerable.Range(0, 6000).Select(_ => Draw())];
            MallocBatchResult r = await connection.MCache(node.Name).MallocSizesAsync(draw);
            HeapPointer[] free = [.. r.Pointers.Where(_ => rng.Chance(40))];
            await connection.Router.FreeBatchAsync(free);
            kept += r.Pointers.Length - free.Length;
        }
        output.WriteLine($"   {kept} objects live");
        // One node returns its free runs to the OS now, so the map shows released pages beside free ones.
        long released = await connection.Node(nodes[0].Name).ScavengeAsync(force: true);
        output.WriteLine($"   {nodes[0].Name} scavenged: {ByteSize.Format(released)} of free runs returned to the OS (drawn '-' in the map, hatched in the SVG)");
    }
}
