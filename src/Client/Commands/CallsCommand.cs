using ClusterHeap.Client.Bench;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Commands;

/// <summary>`clusterheap bench calls [--seconds 2] [--repeat 3] [--node NAME]`: see <see cref="CallsBench"/>.</summary>
public static class CallsCommand
{
    public static (double Seconds, string? Node, int Repeat) Parse(ArgReader args)
    {
        double seconds = args.Seconds("seconds", 2);
        int repeat = (int)args.Long("repeat", 3, min: 1);
        string? node = args.Option("node");
        args.Done("bench calls");
        return (seconds, node, repeat);
    }

    public static async Task<int> RunAsync((double Seconds, string? Node, int Repeat) options, ClusterConnection connection, TextWriter output)
    {
        (double seconds, string? node, int repeat) = options;
        var nodes = await connection.NodesAsync();
        string target = node ?? nodes[0].Name;
        if (!nodes.Any(n => n.Name == target)) throw new UsageException($"unknown node '{target}' (live nodes: {string.Join(", ", nodes.Select(n => n.Name))})");
        output.WriteLine($"# bench calls: client -> mcache grain {target}/0 on {connection.Description}, {seconds:0.#} s per measurement, {repeat} repetitions after a warm-up, interleaved");
        await CallsBench.RunAsync(connection, target, TimeSpan.FromSeconds(seconds), output, repeat);
        return 0;
    }
}
