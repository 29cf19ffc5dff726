using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Commands;

namespace ClusterHeap.Client;

/// <summary>The `clusterheap` command: dispatches to one command per file under Commands/.</summary>
public static class Program
{
    public const string Usage = """
        usage: clusterheap COMMAND [options]
          info classes                      Go's size-class table, as generated here
          info layout [--arena-size 512GiB] reserve a node heap and print where spans, bitmap and arena landed
          bench local [ring options]        the ring workload on the node heap in process (see WORKLOADS.md)
        """;

    public static int Main(string[] argv) => Run(argv, Console.Out, Console.Error);

    public static int Run(string[] argv, TextWriter output, TextWriter error)
    {
        var args = new ArgReader(argv);
        string? command = args.Positional();
        try
        {
            return command switch
            {
                "info" => InfoCommand.Run(args, output),
                "bench" => BenchCommand.Run(args, output),
                null or "help" or "-h" or "--help" => Help(output),
                _ => throw new UsageException($"unknown command '{command}'"),
            };
        }
        catch (UsageException e)
        {
            error.WriteLine($"error: {e.Message}");
            error.WriteLine(Usage);
            return 2;
        }
        catch (Exception e) when (e is ClusterHeap.Heap.HeapInitException or ClusterHeap.Heap.HeapOutOfMemoryException or ClusterHeap.Heap.InvalidSizeException)
        {
            error.WriteLine($"error: {e.Message}");
            return 1;
        }
    }

    private static int Help(TextWriter output)
    {
        output.WriteLine(Usage);
        return 0;
    }
}
