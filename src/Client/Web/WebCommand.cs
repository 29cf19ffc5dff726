using System.Net;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Web;

/// <summary>
/// <c>clusterheap web [--port 8080] [--listen 127.0.0.1]</c>: serves the live heap map
/// (<see cref="HeapMapServer"/>) of the cluster it connects to, embedded or running, until Ctrl+C.
/// When it knows the gateways (an embedded cluster, or --gateway) it prints the options by which a stress run or a shell in another
/// terminal reaches the same cluster.
/// </summary>
public static class WebCommand
{
    public static Command Create(CliContext cli)
    {
        Option<long> port = Symbols.Count("--port", "the page's port", 8080, 1, 65535);
        var listen = new Option<string>("--listen")
        {
            Description = "the address to listen on (0.0.0.0 for every address)",
            DefaultValueFactory = _ => "127.0.0.1",
        };
        Command command = CommandTree.New("web",
            "A live heap map in the browser until Ctrl+C: every node's arena, spans coloured by size class and shaded by " +
            "occupancy, leased, free and released pages, hover for a span's class, occupancy and owner, click a node for " +
            "its MemStats. It updates a few times a second (server-sent events; only changed spans travel).",
            "clusterheap web --port 8080", "clusterheap web --gateway 127.0.0.1:30000")
            .With(port, listen);
        command.SetAction((r, _) =>
        {
            Options options = Parse((int)r.Get(port), r.GetValue(listen) ?? "127.0.0.1");
            return Program.WithClusterAsync(cli.Connection.Read(r), cli, c => RunAsync(options, c, cli.Output, cli.Interruptible()));
        });
        return command;
    }

    /// <summary>The parsed options: the port and the listener's host ("*" for every address).</summary>
    public sealed record Options(int Port, string Listen);

    public static Options Parse(int port, string listen)
    {
        if (!IPAddress.TryParse(listen, out IPAddress? address)) throw new UsageException($"--listen: '{listen}' is not an IP address");
        return new Options(port, address.Equals(IPAddress.Any) ? "*" : listen);
    }

    public static async Task<int> RunAsync(Options options, ClusterConnection connection, TextWriter output, CancellationToken stop)
    {
        HeapMapServer server;
        try
        {
            server = HeapMapServer.Start(connection, options.Port, options.Listen);
        }
        catch (HttpListenerException e)
        {
            output.WriteLine($"error: cannot serve the heap map on {options.Listen}:{options.Port}: {e.Message}");
            return ExitCodes.Failed;
        }

        await using (server)
        {
            output.WriteLine($"heap map of the {connection.Description}: {server.Url}  (Ctrl+C stops)");
            if (connection.Gateways.Count > 0)
            {
                output.WriteLine($"other commands reach this cluster with: clusterheap --gateway {string.Join(",", connection.Gateways)} --cluster-id {connection.ClusterId} stress larson");
            }

            try
            {
                await Task.Delay(Timeout.Infinite, stop);
            }
            catch (OperationCanceledException)
            {
                output.WriteLine("stopping");
            }
        }

        return ExitCodes.Ok;
    }
}
