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
}

[CollectionDefinition(Name)]
public sealed class EmbeddedClusterCollection : ICollectionFixture<EmbeddedClusterFixture>
{
    public const string Name = "embedded cluster";
}
