using ClusterHeap.Client.Bench;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Render;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap bench local …` (the ring workload on the node heap in process, no Orleans: <see cref="RingBench"/>),
/// `clusterheap bench binarytrees …` (binary-trees on a collected node heap in process: <see cref="BinaryTreesBench"/>)
/// and `clusterheap bench calls …` (grain call rates against one mcache grain: <see cref="CallsBench"/>). See
/// README "Benchmarks". The ring and binary-trees options keep their anchors' single-dash spelling too (<c>-size 64</c>,
/// <c>-depth 16</c>), so scripts/bench-ring.sh and scripts/bench-gc.sh pass the same arguments to every program
/// (<see cref="RingSpelling"/>).
/// </summary>
public static class BenchCommand
{
    private static readonly string[] RingOptionNames = ["size", "min", "max", "live", "ops", "random", "seed"];
    private static readonly string[] BinaryTreesOptionNames = ["depth", "gogc", "gctrace", "mode"];

    /// <summary>
    /// `bench local -size 64` as `bench local --size 64`, `bench binarytrees -depth 16` as `--depth 16`: the anchors'
    /// spelling of their options (ring.c's, binarytrees.go's), accepted as is.
    /// </summary>
    public static string[] RingSpelling(string[] argv)
    {
        int bench = Array.IndexOf(argv, "bench");
        if (bench < 0 || bench + 1 >= argv.Length) return argv;
        string[]? names = argv[bench + 1] switch { "local" => RingOptionNames, "binarytrees" => BinaryTreesOptionNames, _ => null };
        if (names == null) return argv;
        return [.. argv.Select((a, i) => i > bench + 1 && a.Length > 2 && a[0] == '-' && a[1] != '-' && names.Contains(a[1..].Split('=')[0]) ? "-" + a : a)];
    }

    public static Command Create(CliContext cli)
    {
        Command bench = CommandTree.New("bench", "Benchmarks: the ring workload or binary-trees on the node heap in process, or grain call rates.",
            "clusterheap bench local --size 64", "clusterheap bench binarytrees --depth 16", "clusterheap bench calls --duration 2s")
            .With(Local(cli), BinaryTrees(cli), Calls(cli));
        bench.SetAction(r => CommandTree.ShowHelp(r, ExitCodes.Usage));
        return bench;
    }

    private static Command Local(CliContext cli)
    {
        Option<long> size = Symbols.Size("--size", "object size (also the untimed fill's)", 64);
        Option<long> min = Symbols.Size("--min", "random sizes from --min to --max instead", 0);
        Option<long> max = Symbols.Size("--max", "see --min", 0);
        Option<long> live = Symbols.Count("--live", "objects in the ring", 10_000, 1, 100_000_000);
        Option<long> ops = Symbols.Count("--ops", "free + malloc steps timed", 10_000_000, 1, long.MaxValue);
        Option<bool> random = new("--random") { Description = "free a random slot instead of the oldest" };
        Option<long> seed = Symbols.Count("--seed", "xorshift64 seed", 1, 1, long.MaxValue);
        Command command = CommandTree.New("local",
            "The ring workload (bench/WORKLOADS.md) on one node heap in this process, no Orleans: the same steps as the " +
            "anchor ring.c, printing one line with ns/op, the heap's figures, managed_alloc_bytes and the verifier. " +
            "--arena-size is the heap's reservation here (default 512GiB).",
            "clusterheap bench local --size 64", "clusterheap bench local -min 16 -max 4096 -live 100000 -ops 5000000")
            .With(size, min, max, live, ops, random, seed);
        command.SetAction((r, _) =>
        {
            // --arena-size is the connection options' (recursive); bench local's default is the node heap's own.
            Option<long> arena = cli.Connection.ArenaSize;
            RingOptions o = new RingOptions(r.Get(size), r.Get(min), r.Get(max), r.Get(live), r.Get(ops), r.Get(random),
                (ulong)r.Get(seed), r.GetResult(arena) is null ? HeapLayout.DefaultArenaSize : r.Get(arena)).Validate();
            RingResult result = RingBench.Run(o);
            r.InvocationConfiguration.Output.WriteLine(result.Line());
            if (!result.Verify.Ok) r.InvocationConfiguration.Output.WriteLine($"verify: {result.Verify}");
            return Task.FromResult(result.Verify.Ok ? ExitCodes.Ok : ExitCodes.Failed);
        });
        return command;
    }

    private static Command BinaryTrees(CliContext cli)
    {
        Option<long> depth = Symbols.Count("--depth", "the largest tree's depth (4..28)", 16, 4, 28);
        Option<long> gogc = Symbols.Count("--gogc", "GOGC: percent the heap may grow over what the last mark found live; -1 = off", 100, -1, int.MaxValue);
        Option<bool> trace = new("--gctrace") { Description = "print each cycle's gctrace line (Go's GODEBUG=gctrace=1) on stderr" };
        Option<string> mode = new("--mode")
        {
            Description = "stw: every cycle stops the world; concurrent: marking runs beside the mutator on a dedicated mark " +
                "worker thread (a second core), two short pauses; assist: concurrent, the mutator does the mark work itself " +
                "in slices at its refills (one core, as Go's GOMAXPROCS=1 run)",
            DefaultValueFactory = _ => "concurrent",
        };
        Command command = CommandTree.New("binarytrees",
            "binary-trees (bench/anchors/binarytrees.go's shape) on one collected node heap in this process, no frees: the " +
            "collector reclaims the dropped trees. Prints one line with checksum=, ms=, heapsys=, numgc=, pause_p50_us=, " +
            "pause_max_us=, gccpu= and the verifier, as Go's program does; exit 1 on a wrong checksum or a broken invariant.",
            "clusterheap bench binarytrees --depth 16", "clusterheap bench binarytrees -depth 18 -gctrace -mode stw")
            .With(depth, gogc, trace, mode);
        command.SetAction((r, _) =>
        {
            TextWriter output = r.InvocationConfiguration.Output;
            BinaryTreesOptions o = new BinaryTreesOptions((int)r.Get(depth), (int)r.Get(gogc), Trace: r.Get(trace) ? cli.Error : null,
                Mode: r.Get(mode) ?? "concurrent").Validate();
            BinaryTreesResult result = BinaryTreesBench.Run(o);
            output.WriteLine(result.Line());
            long want = BinaryTreesResult.ExpectedChecksum(o.Depth);
            if (result.Checksum != want) output.WriteLine($"checksum: {result.Checksum}, but binary-trees of depth {o.Depth} has {want} nodes");
            if (!result.Verify.Ok) output.WriteLine($"verify: {result.Verify}");
            return Task.FromResult(result.Verify.Ok && result.Checksum == want ? ExitCodes.Ok : ExitCodes.Failed);
        });
        return command;
    }

    private static Command Calls(CliContext cli)
    {
        Option<TimeSpan> duration = Symbols.Duration("--duration", "length of each measurement", TimeSpan.FromSeconds(2), "--seconds");
        Option<string?> node = new("--node") { Description = "the node whose mcache grain NODE/0 is called (default: the first)", HelpName = "NODE" };
        Option<bool> json = new("--json") { Description = "print the measurements as one JSON document instead of lines" };
        Option<long> repeat = Symbols.Count("--repeat", "repetitions of the whole set after the warm-up (medians reported)", 3, 1, 100);
        Command command = CommandTree.New("calls",
            "The cost of a call: a no-op grain call and Malloc(64), one at a time and 64 in flight, and MallocBatch of " +
            "1024 x 64 B, against one mcache grain, warmed up, then repeated in rotated order (medians). Rates per second; latency percentiles are measured values. Ctrl+C " +
            "stops after freeing what the current measurement allocated.",
            "clusterheap bench calls", "clusterheap bench calls --duration 5s --json $(scripts/cluster.sh connect)")
            .With(duration, node, json, repeat);
        command.SetAction((r, _) =>
        {
            CancellationToken interrupt = cli.Interruptible();
            return Program.WithClusterAsync(cli.Connection.Read(r), cli, async c =>
            {
                NodeInfo[] nodes = await c.NodesAsync();
                string target = r.Get(node) ?? nodes[0].Name;
                if (!nodes.Any(n => n.Name == target))
                {
                    cli.Error.WriteLine($"error: unknown node '{target}' (live nodes: {string.Join(", ", nodes.Select(n => n.Name))})");
                    return ExitCodes.Failed;
                }
                TimeSpan each = r.Get(duration);
                bool asJson = r.Get(json);
                int reps = (int)r.Get(repeat);
                if (!asJson) cli.Output.WriteLine($"# bench calls: client -> mcache grain {target}/0 on {c.Description}, {each.TotalSeconds:0.###} s per measurement, {reps} repetitions after a warm-up, interleaved");
                List<CallsBench.Measurement> results = await CallsBench.RunAsync(c, target, each, asJson ? TextWriter.Null : cli.Output, interrupt, reps);
                if (asJson) cli.Output.WriteLine(JsonText.Calls(target, c.Description, each, results, interrupt.IsCancellationRequested));
                return interrupt.IsCancellationRequested ? ExitCodes.Interrupted : ExitCodes.Ok;
            }, interrupt);
        });
        return command;
    }
}
