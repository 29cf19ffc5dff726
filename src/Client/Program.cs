using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client;

/// <summary>The `clusterheap` command: dispatches to one command per file under Commands/.</summary>
public static class Program
{
    public const string Usage = """
        usage: clusterheap COMMAND [options] [connection options]
          demo                              start an embedded cluster, run a short stress test, show its report, map and stats
          shell                             interactive shell (type help); reads commands from stdin when it is not a terminal
          stress WORKLOAD [options]         larson | xmalloc | mstress | ring | grow-shrink, with cookie checks (stress --help)
          stats [NODE]  nodes  verify       one-shot: cluster statistics, live nodes, heap verifier
          map [NODE] [--svg FILE]           the heap map in the terminal, or as an SVG picture of the whole cluster
          bench calls [--seconds 2] [--repeat 3]
                                            grain call, Malloc (1 and 64 in flight) and MallocBatch rates
          bench local [ring options]        the ring workload on the node heap in process (see bench/WORKLOADS.md)
          info classes                      Go's size-class table, as generated here
          info layout [--arena-size 512GiB] reserve a node heap and print where spans, bitmap and arena landed

        exit codes: 0 ok, 1 failed (cookie failure, unexpected error, verifier problem), 2 usage, 3 no cluster
        """;

    public static async Task<int> Main(string[] argv) => await RunAsync(argv, Console.Out, Console.Error);

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error)
    {
        var args = new ArgReader(argv);
        try
        {
            // Connection options may come before or after the command (`clusterheap --redis h:p shell`), so they
            // are taken first: their values are never mistaken for the command or a positional argument.
            // `info` and `bench local` never connect (and `info layout` has an --arena-size of its own).
            string? first = argv.FirstOrDefault(a => !a.StartsWith('-'));
            bool local = first == "info" || (first == "bench" && argv.Contains("local"));
            ConnectOptions connect = local ? new ConnectOptions() : ConnectOptions.Parse(args);
            string? command = args.Positional();
            switch (command)
            {
                case "info":
                    return InfoCommand.Run(args, output);
                case "bench":
                {
                    string? what = args.Positional();
                    if (what != "calls") return BenchCommand.Run(what, args, output);
                    var calls = CallsCommand.Parse(args);
                    return await WithClusterAsync(connect, error, c => CallsCommand.RunAsync(calls, c, output));
                }
                case "demo":
                    return await DemoCommand.RunAsync(args, connect, output, error);
                case "shell":
                {
                    args.Done("shell");
                    return await WithClusterAsync(connect, error, c => ShellCommand.RunAsync(c, output));
                }
                case "stress":
                {
                    if (args.Flag("help") || args.Flag("h"))
                    {
                        output.Write(StressOptions.Help);
                        output.WriteLine();
                        output.Write(ConnectOptions.Help);
                        return 0;
                    }
                    StressOptions stress = StressOptions.Parse(args);
                    args.Done("stress");
                    return await WithClusterAsync(connect, error, c => StressCommand.RunAsync(stress, c, output, Terminal(output)));
                }
                case "stats" or "nodes" or "map" or "verify":
                {
                    bool colour = Colour(output, args);
                    string line = InspectCommand.Parse(command, args);
                    return await WithClusterAsync(connect, error, c => InspectCommand.RunAsync(command, line, c, output, colour));
                }
                case null or "help" or "-h" or "--help":
                    output.WriteLine(Usage);
                    output.WriteLine(ConnectOptions.Help);
                    return 0;
                default:
                    throw new UsageException($"unknown command '{command}'");
            }
        }
        catch (UsageException e)
        {
            error.WriteLine($"error: {e.Message}");
            error.WriteLine(Usage);
            return 2;
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            error.WriteLine($"error: the cluster failed the command: {e.GetType().Name}: {e.Message}");
            return 1;
        }
        catch (Exception e) when (e is ClusterHeap.Heap.HeapInitException or ClusterHeap.Heap.HeapOutOfMemoryException or ClusterHeap.Heap.InvalidSizeException or ClusterHeapException)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    /// <summary>True when <paramref name="output"/> is a terminal (or --color), false with --no-color.</summary>
    public static bool Colour(TextWriter output, ArgReader args)
    {
        bool on = args.Flag("color"), off = args.Flag("no-color");
        return !off && (on || (ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected && Environment.GetEnvironmentVariable("NO_COLOR") is null));
    }

    /// <summary>True when <paramref name="output"/> is the console and the console is a terminal (progress bars, colour).</summary>
    public static bool Terminal(TextWriter output) => ReferenceEquals(output, Console.Out) && !Console.IsOutputRedirected;

    /// <summary>Connects as <paramref name="options"/> say, runs <paramref name="body"/>, disconnects (stopping embedded silos).</summary>
    public static async Task<int> WithClusterAsync(ConnectOptions options, TextWriter error, Func<ClusterConnection, Task<int>> body)
    {
        ClusterConnection connection;
        try
        {
            connection = await ClusterConnection.OpenAsync(options);
        }
        catch (Exception e) when (e is not UsageException)
        {
            error.WriteLine($"error: cannot reach the cluster ({(options.IsEmbedded ? "embedded" : string.Join(",", options.Gateways) + options.Redis)}): {e.GetBaseException().Message}");
            return 3;
        }
        await using (connection)
        {
            return await body(connection);
        }
    }
}
