using System.CommandLine.Parsing;
using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Connect;

/// <summary>
/// The connection options on the command line (see <see cref="ConnectOptions"/>). They are recursive: they
/// may come before or after the command (<c>clusterheap --redis h:p shell</c>, <c>clusterheap shell --redis
/// h:p</c>), and every command's --help lists them. Commands that never connect ignore them.
/// </summary>
public sealed class ConnectionSymbols
{
    public Option<int?> Embedded { get; } = new("--embedded")
    {
        Description = "an embedded cluster of N silos in this process (default when no --gateway or --redis: 3)",
        HelpName = "N",
        Recursive = true,
        CustomParser = r => int.TryParse(r.Tokens[0].Value, out int n) && n is >= 1 and <= 16 ? n : Bad<int?>(r, "is not a silo count from 1 to 16"),
    };

    public Option<string[]> Gateway { get; } = new("--gateway")
    {
        Description = "a running cluster, by its gateways (static clustering)",
        HelpName = "HOST:PORT[,HOST:PORT]",
        Recursive = true,
        CustomParser = r =>
        {
            string[] all = r.Tokens[0].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            foreach (string g in all)
            {
                if (!Endpoints.TryParse(g, out _)) return Bad<string[]>(r, $"'{g}' is not host:port", quote: false);
            }
            return all.Length > 0 ? all : Bad<string[]>(r, "names no gateway");
        },
    };

    public Option<string?> Redis { get; } = new("--redis")
    {
        Description = "a running cluster, found through Redis membership",
        HelpName = "HOST:PORT",
        Recursive = true,
        CustomParser = r => Endpoints.TryParse(r.Tokens[0].Value, out _) ? r.Tokens[0].Value : Bad<string?>(r, "is not host:port"),
    };

    public Option<string?> ClusterId { get; } = new("--cluster-id")
    {
        Description = "the Orleans cluster id (default clusterheap; an embedded cluster gets a fresh one)",
        HelpName = "ID",
        Recursive = true,
    };

    public Option<string> ServiceId { get; } = new("--service-id")
    {
        Description = "the Orleans service id",
        HelpName = "ID",
        Recursive = true,
        DefaultValueFactory = _ => "clusterheap",
    };

    public Option<long> ArenaSize { get; } = Recurse(Symbols.Size("--arena-size", "arena reserved per embedded node (info layout, bench local: the heap they reserve)", 1L << 30));

    public Option<long> Procs { get; } = Recurse(Symbols.Count("--procs", "mcache grains (P) per embedded node", 2, 1, 64));

    public Option<TimeSpan> ConnectTimeout { get; } = Recurse(Symbols.Duration("--connect-timeout", "how long to keep trying a running cluster before giving up (exit 3)", TimeSpan.FromSeconds(10)));

    public Option<bool> Verbose { get; } = new("--verbose") { Description = "show silo and client logs", Recursive = true };

    public IEnumerable<Option> All => [Embedded, Gateway, Redis, ClusterId, ServiceId, ArenaSize, Procs, ConnectTimeout, Verbose];

    /// <summary>The options as given; a usage error when they contradict each other.</summary>
    public ConnectOptions Read(ParseResult r)
    {
        string[]? gateways = r.GetResult(Gateway) is null ? null : r.GetValue(Gateway);
        string? redis = r.GetValue(Redis);
        int? embedded = r.GetValue(Embedded);
        if (gateways is not null && redis is not null) throw new UsageException("give --gateway or --redis, not both");
        if (embedded is not null && (gateways is not null || redis is not null)) throw new UsageException("--embedded cannot be combined with --gateway or --redis");
        return new ConnectOptions
        {
            Embedded = embedded ?? 3,
            Gateways = gateways ?? [],
            Redis = redis,
            ClusterId = r.GetValue(ClusterId),
            ServiceId = r.GetValue(ServiceId) ?? "clusterheap",
            ArenaSize = r.Get(ArenaSize),
            Procs = (int)r.Get(Procs),
            ConnectTimeout = r.Get(ConnectTimeout),
            Verbose = r.GetValue(Verbose),
        };
    }

    private static Option<T> Recurse<T>(Option<T> o)
    {
        o.Recursive = true;
        return o;
    }

    private static T Bad<T>(ArgumentResult r, string what, bool quote = true)
    {
        r.AddError(quote ? $"{Symbols.Typed(r)}: '{r.Tokens[0].Value}' {what}" : $"{Symbols.Typed(r)}: {what}");
        return default!;
    }
}
