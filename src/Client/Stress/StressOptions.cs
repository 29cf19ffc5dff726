using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Stress;

/// <summary>Options of `clusterheap stress WORKLOAD`; defaults follow bench/WORKLOADS.md where it gives them.</summary>
public sealed record StressOptions
{
    public static readonly string[] Workloads = ["larson", "xmalloc", "mstress", "ring", "grow-shrink", "graph"];

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
    /// <summary>graph: the reachable bytes all workers keep (each retires its oldest objects past its share); 0 = grow.</summary>
    public long Live { get; init; }
    /// <summary>grow-shrink: rounds (0 = as many as the duration allows, at least one).</summary>
    public int Rounds { get; init; }
    public ulong Seed { get; init; } = 1;
    public string? Json { get; init; }
    /// <summary>Progress display: null = bar on a terminal, lines otherwise; false = none.</summary>
    public bool? Progress { get; init; }

    /// <summary>Fails with a usage error on a combination the options' own parsers cannot see.</summary>
    public StressOptions Validate()
    {
        StressOptions o = this;
        if (o.Batch > 4096) throw new UsageException("--batch: at most 4096 objects per call");
        if ((o.Min > 0) != (o.Max > 0) || o.Max < o.Min) throw new UsageException("--min and --max: give both, with 1 <= min <= max");
        if (o.Size > 0 && o.Min > 0) throw new UsageException("give --size or --min/--max, not both");
        if (o.Size > 64L << 20 || o.Max > 64L << 20) throw new UsageException("object sizes: at most 64 MiB");
        if (o.Size is > 0 and < 8 || o.Min is > 0 and < 8) throw new UsageException("object sizes: at least 8 bytes (room for a cookie)");
        return o;
    }
}
