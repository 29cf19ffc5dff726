using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// The embedded cluster the client's commands run against in tests: the same <see cref="ClusterConnection"/>
/// the CLI opens with no connection option (three real silos on loopback ports), with smaller arenas.
/// </summary>
public sealed class EmbeddedClusterFixture : IAsyncLifetime
{
    public static readonly ConnectOptions Options = new() { Embedded = 3, ArenaSize = 256L << 20, Procs = 2, GrantChunk = 16L << 20 };

    public ClusterConnection Connection { get; private set; } = null!;

    public async Task InitializeAsync() => Connection = await ClusterConnection.OpenAsync(Options);

    public async Task DisposeAsync() => await Connection.DisposeAsync();

    /// <summary>The options that point another client (a `clusterheap` command line) at this cluster.</summary>
    public string[] ConnectArgs => ["--gateway", string.Join(',', Connection.Gateways), "--cluster-id", Connection.ClusterId];

    /// <summary>Runs a `clusterheap` command line against this cluster (a second client of it), capturing both outputs.</summary>
    public async Task<(int Exit, string Output, string Error)> RunCliAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Program.RunAsync([.. args, .. ConnectArgs], output, error);
        return (exit, output.ToString(), error.ToString());
    }
}

[CollectionDefinition(Name)]
public sealed class EmbeddedClusterCollection : ICollectionFixture<EmbeddedClusterFixture>
{
    public const string Name = "embedded cluster";
}
