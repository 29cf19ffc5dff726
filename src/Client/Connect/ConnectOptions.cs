using ClusterHeap.Client.Cli;
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

    public bool IsEmbedded => Gateways.Count == 0 && Redis is null;

    public static ConnectOptions Parse(ArgReader args)
    {
        string? gateway = args.Option("gateway");
        string? redis = args.Option("redis");
        string? embedded = args.Option("embedded");
        var o = new ConnectOptions
        {
            Gateways = gateway is null ? [] : gateway.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            Redis = redis,
            ClusterId = args.Option("cluster-id"),
            ServiceId = args.Option("service-id") ?? "clusterheap",
            ArenaSize = args.Size("arena-size", 1L << 30),
            Procs = (int)args.Long("procs", 2, min: 1),
            Verbose = args.Flag("verbose"),
        };
        if (embedded is not null)
        {
            if (!int.TryParse(embedded, out int n) || n < 1 || n > 16) throw new UsageException($"--embedded: '{embedded}' is not a silo count from 1 to 16");
            if (!o.IsEmbedded) throw new UsageException("--embedded cannot be combined with --gateway or --redis");
            o = o with { Embedded = n };
        }
        if (gateway is not null && redis is not null) throw new UsageException("give --gateway or --redis, not both");
        foreach (string g in o.Gateways) _ = Endpoints.Parse(g, "--gateway");
        if (redis is not null) _ = Endpoints.Parse(redis, "--redis");
        return o;
    }

    public const string Help = """
        connection options (any command that talks to a cluster):
          (none)                            an embedded cluster: 3 silos in this process on free loopback ports
          --embedded N                      an embedded cluster of N silos
          --gateway host:port[,host:port]   a running cluster, by its gateways (static clustering)
          --redis host:port                 a running cluster, found through Redis membership
          --cluster-id ID                   the cluster id (default clusterheap; embedded: a fresh one)
          --arena-size 1GiB  --procs 2      embedded nodes' arena and mcache count (P)
          --verbose                         show silo and client logs
        """;
}
