using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Stress;

/// <summary>Options of `clusterheap stress WORKLOAD`; defaults follow bench/WORKLOADS.md where it gives them.</summary>
public sealed record StressOptions
{
    public static readonly string[] Workloads = ["larson", "xmalloc", "mstress", "ring", "grow-shrink"];

    public string Workload { get; init; } = "larson";
    /// <summary>Timed phase length (ignored when <see cref="Ops"/> is set and reached first).</summary>
    public TimeSpan Duration { get; init; } = TimeSpan.FromSeconds(10);
    /// <summary>Stop after this many operations (mallocs + frees); 0 = run for <see cref="Duration"/>.</summary>
    public long Ops { get; init; }
    public int Workers { get; init; }
    /// <summary>Objects per call (1 = one grain call per object).</summary>
    public int Batch { get; init; } = 32;
    /// <summary>larson: rounds each worker keeps in flight at once, over disjoint slots.</summary>
    public int InFlight { get; init; } = 1;
    /// <summary>Fixed object size, or 0 for the workload's size mix.</summary>
    public long Size { get; init; }
    public long Min { get; init; }
    public long Max { get; init; }
    /// <summary>Live slots per worker (larson S, ring live, mstress cap); 0 = the workload's default.</summary>
    public int Slots { get; init; }
    /// <summary>larson: steps after which a worker hands its slots to another node's mcache.</summary>
    public long Handoff { get; init; } = 500_000;
    /// <summary>grow-shrink: the cluster memory limit for the run (0 = current grants + 256 MiB, or the limit already set).</summary>
    public long Limit { get; init; }
    /// <summary>grow-shrink: rounds (0 = as many as the duration allows, at least one).</summary>
    public int Rounds { get; init; }
    public ulong Seed { get; init; } = 1;
    public string? Json { get; init; }
    /// <summary>Progress display: null = bar on a terminal, lines otherwise; false = none.</summary>
    public bool? Progress { get; init; }

    public const string Help = """
        usage: clusterheap stress WORKLOAD [options] [connection options]
          WORKLOAD            larson | xmalloc | mstress | ring | grow-shrink (bench/WORKLOADS.md)
          --duration 10s      length of the timed run (default 10 s)
          --ops N             stop after N operations (mallocs + frees) instead
          --workers N         concurrent workers (default 2 per node)
          --batch N           objects per grain call (default 32; 1 = a call per object)
          --in-flight N       larson: rounds each worker keeps in flight at once (default 1)
          --size SIZE         fixed object size; or --min SIZE --max SIZE for uniform random sizes
          --slots N           live slots per worker (larson 5000, ring 1000, mstress 5000)
          --handoff N         larson: steps before a worker moves to another node's mcache (default 500000)
          --limit SIZE        grow-shrink: cluster memory limit for the run (restored after)
          --rounds N          grow-shrink: rounds to run (default: as the duration allows, at least 1)
          --seed N            xorshift64 seed (default 1)
          --json FILE         also write the report as JSON: workload, ops, ops_per_sec, p50_us, p99_us, p999_us,
                              refills, leases, central_calls, central_calls_per_million_mallocs, peak_committed_bytes, live_over_committed, cookie_failures,
                              lost_objects, errors, passed, verify_ok, duration_s, workers, batch, nodes, mallocs,
                              frees, cookie_checks, latency_samples, out_of_memory, interrupted_objects, nodes_gone, verify,
                              error_messages, shape and the workload's own figures
          --no-progress       no progress bar or lines (a bar on a terminal, a line every 2 s otherwise)
        lost objects (their node died during the run) and out of memory in grow-shrink are expected, not failures.
        exit codes: 0 passed; 1 a cookie was wrong, an operation failed unexpectedly or the verifier found a
        broken invariant; 2 usage; 3 the cluster could not be reached
        """;

    public static StressOptions Parse(ArgReader args)
    {
        string workload = args.Positional() ?? throw new UsageException("stress: name a workload: " + string.Join(", ", Workloads));
        if (!Workloads.Contains(workload)) throw new UsageException($"stress: unknown workload '{workload}' (one of {string.Join(", ", Workloads)})");
        var o = new StressOptions
        {
            Workload = workload,
            Duration = TimeSpan.FromSeconds(args.Seconds("duration", 10)),
            Ops = args.Long("ops", 0, min: 0),
            Workers = (int)args.Long("workers", 0, min: 1),
            Batch = (int)args.Long("batch", 32, min: 1),
            InFlight = (int)args.Long("in-flight", 1, min: 1),
            Size = args.Size("size", 0),
            Min = args.Size("min", 0),
            Max = args.Size("max", 0),
            Slots = (int)args.Long("slots", 0, min: 1),
            Handoff = args.Long("handoff", 500_000, min: 1),
            Limit = args.Size("limit", 0),
            Rounds = (int)args.Long("rounds", 0, min: 1),
            Seed = (ulong)args.Long("seed", 1, min: 1),
            Json = args.Option("json"),
            Progress = args.Flag("no-progress") ? false : null,
        };
        if (o.InFlight > 64) throw new UsageException("--in-flight: at most 64 rounds per worker");
        if (o.Batch > 4096) throw new UsageException("--batch: at most 4096 objects per call");
        if ((o.Min > 0) != (o.Max > 0) || o.Max < o.Min) throw new UsageException("--min and --max: give both, with 1 <= min <= max");
        if (o.Size > 0 && o.Min > 0) throw new UsageException("give --size or --min/--max, not both");
        if (o.Size > 64L << 20 || o.Max > 64L << 20) throw new UsageException("object sizes: at most 64 MiB");
        if (o.Size is > 0 and < 8 || o.Min is > 0 and < 8) throw new UsageException("object sizes: at least 8 bytes (room for a cookie)");
        return o;
    }
}
