using ClusterHeap.Grains;
using Microsoft.Extensions.Logging;

namespace ClusterHeap.Client.Connect;

/// <summary>
/// Where the client finds its cluster. With no option it starts an embedded cluster of three silos in
/// its own process; <c>--embedded N</c> picks the count, <c>--gateway host:port[,…]</c> joins running
/// silos by static gateway list, <c>--redis host:port</c> finds them through Redis membership.
/// </summary>
public sealed record ConnectOptions
{
    /// <summary>The cluster id a silo host uses unless told otherwise (scripts/cluster.sh, docker-compose).</summary>
    public const string DefaultClusterId = "clusterheap";

    /// <summary>Embedded silos to start (0 when joining a running cluster).</summary>
    public int Embedded { get; init; } = 3;

    /// <summary>Gateways of a running cluster (static clustering).</summary>
    public IReadOnlyList<string> Gateways { get; init; } = [];

    /// <summary>Redis host:port for membership.</summary>
    public string? Redis { get; init; }

    /// <summary>Orleans ClusterId (embedded clusters get a fresh one unless given).</summary>
    public string? ClusterId { get; init; }

    /// <summary>Orleans ServiceId.</summary>
    public string ServiceId { get; init; } = "clusterheap";

    /// <summary>Arena reserved per embedded node: modest, so a demo stays light.</summary>
    public long ArenaSize { get; init; } = 1L << 30;

    /// <summary>mcache grains (P) per embedded node.</summary>
    public int Procs { get; init; } = 2;

    /// <summary>Growth grant chunk of the embedded nodes.</summary>
    public long GrantChunk { get; init; } = 32L << 20;

    /// <summary>Silo logs on the console (embedded) and client logs.</summary>
    public bool Verbose { get; init; }

    /// <summary>
    /// Also sends the client's and the embedded silos' logs (Information and up) to this provider, for a
    /// program that embeds the client. The connection never disposes it.
    /// </summary>
    public ILoggerProvider? LogSink { get; init; }

    /// <summary>Embedded silos: the last say on their node options (tests turn the background sweeper off).</summary>
    public Action<ClusterHeapOptions>? ConfigureNodes { get; init; }

    public bool IsEmbedded => Gateways.Count == 0 && Redis is null;

    /// <summary>How long a first connection to a running cluster is retried before the command gives up (exit 3).</summary>
    public TimeSpan ConnectTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Where the client looks, in the words of an error message: "gateways 127.0.0.1:30000", "redis … cluster id …".</summary>
    public string Target => IsEmbedded
        ? $"an embedded cluster of {Embedded} silos"
        : Redis is not null
            ? $"cluster '{ClusterId ?? DefaultClusterId}' through redis {Redis}"
            : $"cluster '{ClusterId ?? DefaultClusterId}' at gateway{(Gateways.Count == 1 ? "" : "s")} {string.Join(", ", Gateways)}";
}
