namespace ClusterHeap.Grains;

/// <summary>
/// How a silo is set up as a ClusterHeap node: its name, how fast membership finds a dead node, its heap and the
/// cluster tier. The one configuration the silo host (src/Silo), the embedded cluster (the client's --embedded)
/// and the test clusters share, bound by <see cref="ClusterHeapSiloBuilderExtensions.AddClusterHeap"/>; only
/// clustering and endpoints differ between them.
/// </summary>
public sealed class ClusterHeapOptions
{
    /// <summary>The node's name (the silo name; heap node and mcache grain keys use it). Null keeps the host's.</summary>
    public string? NodeName { get; set; }

    /// <summary>
    /// Membership's probe timeout. With two missed probes a killed silo is declared dead in about twice this
    /// (Orleans' defaults take 10–20 s; docs/DESIGN.md §9): the stress client's verdicts and the central heap's
    /// reclamation wait on that declaration.
    /// </summary>
    public TimeSpan ProbeTimeout { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Arena bytes reserved per node (docs/DESIGN.md §2); 512 GiB by default, tests use 64 MiB.</summary>
    public long ArenaSize { get; set; } = 512L << 30;

    /// <summary>mcache grains per node (P), like GOMAXPROCS: keys <c>node/0</c> … <c>node/(P-1)</c>.</summary>
    public int ProcessorsPerNode { get; set; } = Environment.ProcessorCount;

    /// <summary>Free runs idle longer than this go back to the OS.</summary>
    public TimeSpan ScavengeDelay { get; set; } = TimeSpan.FromMinutes(5);

    /// <summary>The cluster's memory limit (Go's GOMEMLIMIT): Σ growth grants never exceed it. long.MaxValue = none.</summary>
    public long ClusterMemoryLimit { get; set; } = long.MaxValue;

    /// <summary>Growth is granted in multiples of this many bytes (a node's first grant is one chunk).</summary>
    public long GrantChunk { get; set; } = 64L << 20;

    /// <summary>Sweep in the background after each collection (HeapOptions.BackgroundSweeper); tests that look at unswept spans turn it off.</summary>
    public bool BackgroundSweeper { get; set; } = true;

    /// <summary>How long the central heap waits for one node grain while rebuilding or reclaiming.</summary>
    public TimeSpan NodeCallTimeout { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>GOGC for the cluster collector (src/Grains/Gc): the heap goal is the bytes marked × (1 + GOGC/100); negative = off.</summary>
    public int GcPercent { get; set; } = 100;

    /// <summary>
    /// How long a forced cycle (CollectAsync: the shell's gc) may take before it answers with why it could not complete:
    /// below the CLI's 10 s response timeout, so the caller reads the central heap's reason, not a bare timeout. A node
    /// lost mid-way restarts it (the next attempt, over the survivors, gets the whole deadline).
    /// </summary>
    public TimeSpan ForcedGcDeadline { get; set; } = TimeSpan.FromSeconds(8);

    /// <summary>How cluster cycles run.</summary>
    public Contracts.GcMode GcMode { get; set; } = Contracts.GcMode.StopTheWorld;

    /// <summary>A client's lease on its roots: a client that does not renew within this loses them at the next cycle.</summary>
    public TimeSpan ClientLease { get; set; } = TimeSpan.FromSeconds(30);
}
