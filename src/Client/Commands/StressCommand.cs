using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap stress WORKLOAD [options]`: runs a workload of bench/WORKLOADS.md with cookie checks, prints the
/// report (and writes it as JSON with --json FILE). Exit code 0 when it passed, 1 on any cookie failure or
/// unexpected error (lost objects of a dead node and grow-shrink's out of memory are expected), 130 when
/// Ctrl+C stopped it (after every object it held was checked and freed, and the report was written).
/// </summary>
public static class StressCommand
{
    public static Command Create(CliContext cli)
    {
        Argument<string> workload = new Argument<string>("WORKLOAD") { Description = "larson | xmalloc | mstress | ring | grow-shrink | graph (bench/WORKLOADS.md)" }
            .AcceptOnlyFromAmong(StressOptions.Workloads);
        Option<TimeSpan> duration = Symbols.Duration("--duration", "length of the timed run", TimeSpan.FromSeconds(10));
        Option<long> ops = Symbols.Count("--ops", "stop after N operations (mallocs + frees) instead", 0, 1, long.MaxValue);
        Option<long> workers = Symbols.Count("--workers", "concurrent workers (default 2 per node)", 0, 1, 4096);
        Option<long> batch = Symbols.Count("--batch", "objects per grain call (1 = a call per object)", 32, 1, 4096);
        Option<long> inFlight = Symbols.Count("--in-flight", "larson: rounds each worker keeps in flight at once, over disjoint slots", 1, 1, 64);
        Option<long> size = Symbols.Size("--size", "fixed object size (at least 8 B, room for a cookie)", 0);
        Option<long> min = Symbols.Size("--min", "uniform random sizes from --min to --max", 0);
        Option<long> max = Symbols.Size("--max", "see --min", 0);
        Option<long> slots = Symbols.Count("--slots", "live slots per worker (larson 5000, ring 1000, mstress 5000)", 0, 1, 10_000_000);
        Option<long> handoff = Symbols.Count("--handoff", "larson: steps before a worker moves to another node's mcache", 500_000, 1, long.MaxValue);
        Option<long> limit = Symbols.Size("--limit", "grow-shrink: cluster memory limit for the run (restored after)", 0);
        Option<long> live = Symbols.Size("--live", "graph: keep about this many bytes reachable, all workers together (0 = grow)", 0);
        Option<long> rounds = Symbols.Count("--rounds", "grow-shrink: rounds to run (default: as the duration allows, at least 1)", 0, 1, 1_000_000);
        Option<long> seed = Symbols.Count("--seed", "xorshift64 seed", 1, 1, long.MaxValue);
        Option<string?> json = new("--json")
        {
            Description = "also write the report as JSON (workload, ops, ops_per_sec, p50_us, p99_us, p999_us, refills, leases, " +
                "central_calls, central_calls_per_million_mallocs, peak_committed_bytes, utilization, cookie_failures, lost_objects, errors, passed, interrupted, …)",
            HelpName = "FILE",
        };
        Option<bool> noProgress = new("--no-progress") { Description = "no progress bar or lines (a bar on a terminal, a line every 2 s otherwise)" };
        Command command = CommandTree.New("stress",
            "Run a stress workload against the cluster; every object carries a cookie, checked before each free and at " +
            "the end. Lost objects (their node died) and grow-shrink's out of memory are expected, not failures. " +
            "Ctrl+C stops the workers, checks and frees every object still held and writes the report marked " +
            "interrupted (exit 130); a second Ctrl+C exits at once.",
            "clusterheap stress larson --duration 20s --json larson.json $(scripts/cluster.sh connect)",
            "clusterheap stress ring --size 64 --batch 1 --ops 100000")
            .With(workload, duration, ops, workers, batch, inFlight, size, min, max, slots, handoff, limit, live, rounds, seed, json, noProgress);
        command.SetAction((r, _) =>
        {
            StressOptions o = new StressOptions
            {
                Workload = r.GetValue(workload)!,
                Duration = r.Get(duration),
                Ops = r.Get(ops),
                Workers = (int)r.Get(workers),
                Batch = (int)r.Get(batch),
                InFlight = (int)r.Get(inFlight),
                Size = r.Get(size),
                Min = r.Get(min),
                Max = r.Get(max),
                Slots = (int)r.Get(slots),
                Handoff = r.Get(handoff),
                Limit = r.Get(limit),
                Live = r.Get(live),
                Rounds = (int)r.Get(rounds),
                Seed = (ulong)r.Get(seed),
                Json = r.Get(json),
                Progress = r.Get(noProgress) ? false : null,
            }.Validate();
            CancellationToken interrupt = cli.Interruptible();
            return Program.WithClusterAsync(cli.Connection.Read(r), cli, async c =>
            {
                StressReport report = await RunReportAsync(o, c, cli.Output, cli.Terminal, interrupt);
                return !report.Passed ? ExitCodes.Failed : report.Interrupted ? ExitCodes.Interrupted : ExitCodes.Ok;
            }, interrupt);
        });
        return command;
    }

    /// <summary>Runs, prints the report, writes the JSON file when asked; the report says whether it passed.</summary>
    /// <param name="interrupt">Ctrl+C: the run stops early, cleans up and is reported as interrupted.</param>
    public static async Task<StressReport> RunReportAsync(StressOptions options, ClusterConnection connection, TextWriter output, bool terminal = false,
        CancellationToken interrupt = default)
    {
        output.WriteLine($"stress {options.Workload} on {connection.Description}: " +
            (options.Ops > 0 ? $"{options.Ops} ops" : $"{options.Duration.TotalSeconds:0.#} s") + $", batch {options.Batch}");
        StressReport report = await StressRunner.RunAsync(connection, options, output, terminal, interrupt: interrupt);
        report.WriteText(output);
        if (options.Json is not null)
        {
            await File.WriteAllTextAsync(options.Json, report.ToJson(), CancellationToken.None);
            output.WriteLine($"wrote {options.Json}");
        }
        return report;
    }
}
