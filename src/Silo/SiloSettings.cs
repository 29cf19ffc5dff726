using System.Globalization;
using System.Net;
using System.Net.Sockets;
using ClusterHeap.Contracts;

namespace ClusterHeap.Silo;

/// <summary>
/// Everything a silo process is started with. Each setting comes from its command-line option, else
/// from its environment variable (containers), else from its default; <see cref="Options"/> is the
/// table that <c>--help</c> prints and the README copies.
/// </summary>
public sealed class SiloSettings
{
    /// <summary>One setting: its option, its environment variable, its default and what it means.</summary>
    public sealed record Option(string Name, string Env, string Default, string Help);

    /// <summary>Every option, in --help order.</summary>
    public static readonly Option[] Options =
    [
        new("--name", "CLUSTERHEAP_NAME", "node-<silo port>", "node (silo) name; mcache grains are keyed NAME/0..P-1"),
        new("--silo-port", "CLUSTERHEAP_SILO_PORT", "11111", "silo-to-silo port"),
        new("--gateway-port", "CLUSTERHEAP_GATEWAY_PORT", "30000", "client gateway port"),
        new("--advertise", "CLUSTERHEAP_ADVERTISE", "127.0.0.1", "address other silos and clients reach this one at: an IP, a host name, or 'auto' (this host's first IPv4)"),
        new("--listen", "CLUSTERHEAP_LISTEN", "0.0.0.0", "address the silo and gateway ports listen on"),
        new("--primary", "CLUSTERHEAP_PRIMARY", "(this silo)", "development clustering: the primary silo's HOST:SILOPORT (every silo names the same one; it starts first)"),
        new("--redis", "CLUSTERHEAP_REDIS", "(none)", "Redis membership at HOST:PORT instead of development clustering"),
        new("--cluster-id", "CLUSTERHEAP_CLUSTER_ID", "clusterheap", "Orleans ClusterId (use a fresh one per Redis run)"),
        new("--service-id", "CLUSTERHEAP_SERVICE_ID", "clusterheap", "Orleans ServiceId"),
        new("--arena-size", "CLUSTERHEAP_ARENA_SIZE", "512GiB", "arena bytes reserved by this node (64MiB … 512GiB)"),
        new("--procs", "CLUSTERHEAP_PROCS", "(processor count)", "P: mcache grains on this node"),
        new("--scavenge-delay", "CLUSTERHEAP_SCAVENGE_DELAY", "5m", "free runs idle this long go back to the OS (500ms, 30s, 5m, …)"),
        new("--memory-limit", "CLUSTERHEAP_MEMORY_LIMIT", "none", "cluster memory limit (GOMEMLIMIT) for all nodes' growth grants"),
        new("--gogc", "CLUSTERHEAP_GOGC", "100", "GOGC for the cluster collector (the central heap's silo uses its own): heap goal = marked × (1 + GOGC/100); 'off' = cycles only when asked or at the memory limit"),
        new("--gc-mode", "CLUSTERHEAP_GC_MODE", "stw", "how cluster cycles run: stw (stop the world for the whole mark) or concurrent (two short pauses)"),
        new("--client-lease", "CLUSTERHEAP_CLIENT_LEASE", "30s", "a client that does not renew its lease this long loses its roots at the next cycle"),
        new("--probe-timeout", "CLUSTERHEAP_PROBE_TIMEOUT", "2s", "membership probe timeout; a killed silo is declared dead after 2 missed probes"),
        new("--ready-file", "CLUSTERHEAP_READY_FILE", "(none)", "written once the node heap is up (slot, ports, pid), removed on exit"),
        new("--log-level", "CLUSTERHEAP_LOG_LEVEL", "Information", "ClusterHeap log level; Orleans logs at Warning and above"),
        new("--metrics-port", "CLUSTERHEAP_METRICS_PORT", "off", "Prometheus scrape endpoint (http://LISTEN:PORT/metrics) of the --metrics-meters"),
        new("--metrics-meters", "CLUSTERHEAP_METRICS_METERS", "ClusterHeap", "the meters the scrape endpoint exports (comma-separated; Microsoft.Orleans adds Orleans' own, at a cost on every message)"),
        new("--dashboard-port", "CLUSTERHEAP_DASHBOARD_PORT", "off", "the Orleans dashboard on http://LISTEN:PORT/ (every silo of the cluster should have it on)"),
    ];

    public string Name { get; private init; } = "";
    public int SiloPort { get; private init; }
    public int GatewayPort { get; private init; }
    public IPAddress Advertise { get; private init; } = IPAddress.Loopback;
    public IPAddress Listen { get; private init; } = IPAddress.Any;
    public IPEndPoint? Primary { get; private init; }
    public string? Redis { get; private init; }
    public string ClusterId { get; private init; } = "";
    public string ServiceId { get; private init; } = "";
    public long ArenaSize { get; private init; }
    public int Procs { get; private init; }
    public TimeSpan ScavengeDelay { get; private init; }
    public long MemoryLimit { get; private init; }
    public TimeSpan ProbeTimeout { get; private init; }
    /// <summary>GOGC (negative = off).</summary>
    public int GcPercent { get; private init; } = 100;
    public TimeSpan ClientLease { get; private init; }
    public GcMode GcMode { get; private init; }
    public string? ReadyFile { get; private init; }
    public string LogLevel { get; private init; } = "";
    /// <summary>The Prometheus scrape endpoint's port, or null (off, the default: nothing listens to the meters).</summary>
    public int? MetricsPort { get; private init; }
    /// <summary>The meters the scrape endpoint exports.</summary>
    public string[] MetricsMeters { get; private init; } = [];
    /// <summary>The Orleans dashboard's port, or null (off, the default).</summary>
    public int? DashboardPort { get; private init; }

    /// <summary>Reads <paramref name="args"/> then <paramref name="env"/>; throws <see cref="ArgumentException"/> on a bad value.</summary>
    public static SiloSettings Parse(string[] args, Func<string, string?> env)
    {
        var given = new Dictionary<string, string>(StringComparer.Ordinal);
        for (int i = 0; i < args.Length; i++)
        {
            string arg = args[i];
            int eq = arg.IndexOf('=', StringComparison.Ordinal);
            string name = eq > 0 ? arg[..eq] : arg;
            if (Array.Find(Options, o => o.Name == name) is null)
            {
                throw new ArgumentException($"unknown option '{arg}'");
            }

            if (eq > 0)
            {
                given[name] = arg[(eq + 1)..];
            }
            else if (i + 1 < args.Length)
            {
                given[name] = args[++i];
            }
            else
            {
                throw new ArgumentException($"{name} needs a value");
            }
        }

        string? Get(string name)
        {
            if (given.TryGetValue(name, out string? value))
            {
                return value;
            }

            string? fromEnv = env(Array.Find(Options, o => o.Name == name)!.Env);
            return string.IsNullOrWhiteSpace(fromEnv) ? null : fromEnv.Trim();
        }

        // The name an error should use: the option as typed, or the environment variable the value came from.
        string From(string name) => given.ContainsKey(name) ? name : Array.Find(Options, o => o.Name == name)!.Env;

        int siloPort = ParsePort(From("--silo-port"), Get("--silo-port") ?? "11111");
        int gatewayPort = ParsePort(From("--gateway-port"), Get("--gateway-port") ?? "30000");
        string? redis = Get("--redis");
        string? primary = Get("--primary");
        if (redis is not null && primary is not null)
        {
            throw new ArgumentException("--primary (development clustering) and --redis exclude each other");
        }

        return new SiloSettings
        {
            Name = Get("--name") ?? $"node-{siloPort}",
            SiloPort = siloPort,
            GatewayPort = gatewayPort,
            Advertise = ResolveAddress(From("--advertise"), Get("--advertise") ?? "127.0.0.1"),
            Listen = ResolveAddress(From("--listen"), Get("--listen") ?? "0.0.0.0"),
            Primary = primary is null ? null : ParseEndpoint(From("--primary"), primary),
            Redis = redis,
            ClusterId = Get("--cluster-id") ?? "clusterheap",
            ServiceId = Get("--service-id") ?? "clusterheap",
            ArenaSize = ParseSize(From("--arena-size"), Get("--arena-size") ?? "512GiB"),
            Procs = ParseCount(From("--procs"), Get("--procs") ?? Environment.ProcessorCount.ToString(CultureInfo.InvariantCulture)),
            ScavengeDelay = ParseDuration(From("--scavenge-delay"), Get("--scavenge-delay") ?? "5m"),
            MemoryLimit = Get("--memory-limit") is { } limit && !limit.Equals("none", StringComparison.OrdinalIgnoreCase)
                ? ParseSize(From("--memory-limit"), limit)
                : long.MaxValue,
            ProbeTimeout = ParseDuration(From("--probe-timeout"), Get("--probe-timeout") ?? "2s"),
            GcPercent = ParseGogc(From("--gogc"), Get("--gogc") ?? "100"),
            ClientLease = ParseDuration(From("--client-lease"), Get("--client-lease") ?? "30s"),
            GcMode = (Get("--gc-mode") ?? "stw").ToLowerInvariant() switch
            {
                "stw" => GcMode.StopTheWorld,
                "concurrent" => GcMode.Concurrent,
                string other => throw new ArgumentException($"{From("--gc-mode")}: '{other}' is not a mode (stw or concurrent)"),
            },
            ReadyFile = Get("--ready-file"),
            LogLevel = Get("--log-level") ?? "Information",
            MetricsPort = OptionalPort("--metrics-port", Get("--metrics-port")),
            DashboardPort = OptionalPort("--dashboard-port", Get("--dashboard-port")),
            MetricsMeters = (Get("--metrics-meters") ?? "ClusterHeap").Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
        };
    }

    /// <summary>The --help text: usage, then every option with its variable and default.</summary>
    public static string Help()
    {
        var lines = new List<string>
        {
            "usage: clusterheap-silo [options]",
            "",
            "Starts one ClusterHeap node: an Orleans silo with a node heap (docs/DESIGN.md §8).",
            "Every option can also be given by its environment variable; the option wins.",
            "",
        };
        foreach (Option o in Options)
        {
            lines.Add($"  {o.Name,-18} {o.Env,-28} default {o.Default}");
            lines.Add($"  {"",-18} {o.Help}");
        }

        lines.Add("");
        lines.Add("Examples:");
        lines.Add("  clusterheap-silo --name node-1 --silo-port 11111 --gateway-port 30000");
        lines.Add("  clusterheap-silo --name node-2 --silo-port 11112 --gateway-port 30001 --primary 127.0.0.1:11111");
        lines.Add("  clusterheap-silo --name node-1 --redis 127.0.0.1:6379 --cluster-id run-42 --advertise auto");
        return string.Join(Environment.NewLine, lines);
    }

    private static int ParsePort(string option, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int port) && port is > 0 and < 65536
            ? port
            : throw new ArgumentException($"{option}: '{text}' is not a port");

    /// <summary>null for absent or "off"; otherwise a port.</summary>
    private static int? OptionalPort(string option, string? text) =>
        text is null || text.Equals("off", StringComparison.OrdinalIgnoreCase) ? null : ParsePort(option, text);

    private static int ParseGogc(string option, string text) =>
        text.Equals("off", StringComparison.OrdinalIgnoreCase) ? -1
        : int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int percent) ? percent
        : throw new ArgumentException($"{option}: '{text}' is not a percentage (0, 50, 100, 400, …) or 'off'");

    private static int ParseCount(string option, string text) =>
        int.TryParse(text, NumberStyles.None, CultureInfo.InvariantCulture, out int n) && n is > 0 and <= 1024
            ? n
            : throw new ArgumentException($"{option}: '{text}' is not a count from 1 to 1024");

    private static IPEndPoint ParseEndpoint(string option, string text)
    {
        int colon = text.LastIndexOf(':');
        if (colon <= 0)
        {
            throw new ArgumentException($"{option}: '{text}' is not HOST:PORT");
        }

        return new IPEndPoint(ResolveAddress(option, text[..colon]), ParsePort(option, text[(colon + 1)..]));
    }

    /// <summary>An IP as is; 'auto' as this host's first non-loopback IPv4; a name through DNS.</summary>
    private static IPAddress ResolveAddress(string option, string text)
    {
        if (IPAddress.TryParse(text, out IPAddress? ip))
        {
            return ip;
        }

        string host = text.Equals("auto", StringComparison.OrdinalIgnoreCase) ? Dns.GetHostName() : text;
        try
        {
            IPAddress[] addresses = Dns.GetHostAddresses(host).Where(a => a.AddressFamily == AddressFamily.InterNetwork).ToArray();
            return Array.Find(addresses, a => !IPAddress.IsLoopback(a)) ?? addresses.FirstOrDefault()
                ?? throw new ArgumentException($"{option}: '{host}' has no IPv4 address");
        }
        catch (SocketException e)
        {
            throw new ArgumentException($"{option}: cannot resolve '{host}': {e.Message}");
        }
    }

    /// <summary>A size as <see cref="ByteSize"/> reads it (64MiB, 1.5GiB); the error names <paramref name="option"/>.</summary>
    public static long ParseSize(string option, string text) =>
        ByteSize.TryParse(text, out long bytes) ? bytes : throw new ArgumentException(ByteSize.Error(option, text));

    /// <summary>A duration as <see cref="Duration"/> reads it (500ms, 30s, 2m); the error names <paramref name="option"/>.</summary>
    public static TimeSpan ParseDuration(string option, string text) =>
        Duration.TryParse(text, out TimeSpan duration) ? duration : throw new ArgumentException(Duration.Error(option, text));
}
