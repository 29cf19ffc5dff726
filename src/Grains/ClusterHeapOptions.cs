namespace ClusterHeap.Grains;

/// <summary>How a silo's node heap and the cluster tier are set up (bound by <see cref="ClusterHeapSiloBuilderExtensions.AddClusterHeap"/>).</summary>
public sealed class ClusterHeapOptions
{
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
}
