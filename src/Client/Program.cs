using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
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
          bench calls [--seconds 2]         grain call, Malloc (1 and 64 in flight) and MallocBatch rates
          bench local [ring options]        the ring workload on the node heap in process (see WORKLOADS.md)
          info classes                      Go's size-class table, as generated here
          info layout [--arena-size 512GiB] reserve a node heap and print where spans, bitmap and arena landed

        exit codes: 0 ok, 1 failed (cookie failure, unexpected error, verifier problem), 2 usage, 3 no cluster
        """;

    public static async Task<int> Main(string[] argv) => await RunAsync(argv, Console.Out, Console.Error);

    public static async Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error)
    {
        var args = new ArgReader(argv);
        string? command = args.Positional();
        try
        {
            switch (command)
            {
                case "info":
                    return InfoCommand.Run(args, output);
                case "bench":
                    string? what = args.Positional();
                    if (what != "calls") return BenchCommand.Run(what, args, output);
                    return await WithClusterAsync(args, output, error, c => CallsCommand.RunAsync(args, c, output));
                case "demo":
                    return await DemoCommand.RunAsync(args, output, error);
                case "shell":
                    return await WithClusterAsync(args, output, error, c => ShellCommand.RunAsync(args, c, output));
                case "stress":
                    return await WithClusterAsync(args, output, error, c => StressCommand.RunAsync(args, c, output));
                case "stats" or "nodes" or "map" or "verify":
                    return await WithClusterAsync(args, output, error, c => InspectCommand.RunAsync(command, args, c, output, Colour(output, args)));
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

    /// <summary>Connects as the connection options say, runs <paramref name="body"/>, disconnects (stopping embedded silos).</summary>
    public static async Task<int> WithClusterAsync(ArgReader args, TextWriter output, TextWriter error, Func<ClusterConnection, Task<int>> body)
    {
        ConnectOptions options = ConnectOptions.Parse(args);
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
