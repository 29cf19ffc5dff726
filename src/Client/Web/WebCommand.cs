using System.Net;
using System.Runtime.InteropServices;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Web;

/// <summary>
/// <c>clusterheap web [--port 8080] [--listen 127.0.0.1]</c>: serves the live heap map
/// (<see cref="HeapMapServer"/>) of the cluster it connects to, embedded or running, until Ctrl+C.
/// With an embedded cluster it prints the options by which a stress run or a shell in another
/// terminal reaches the same cluster.
/// </summary>
public static class WebCommand
{
    public const string Help = """
        usage: clusterheap web [--port 8080] [--listen 127.0.0.1] [connection options]
          serves a live heap map of the cluster at http://LISTEN:PORT/ until Ctrl+C: every node's arena,
          spans coloured by size class and shaded by occupancy, leased, free and released pages, the
          cluster's stats; it updates a few times a second (server-sent events, only changed spans travel).
          --port 8080        the page's port
          --listen ADDR      the address to listen on (127.0.0.1; 0.0.0.0 for every address)
        """;

    /// <summary>The parsed options.</summary>
    public sealed record Options(int Port, string Listen);

    public static Options Parse(ArgReader args)
    {
        var port = args.Long("port", 8080, min: 1);
        if (port > 65535) throw new UsageException($"--port: {port} is not a port");
        var listen = args.Option("listen") ?? "127.0.0.1";
        if (!IPAddress.TryParse(listen, out var address)) throw new UsageException($"--listen: '{listen}' is not an IP address");
        args.Done("web");
        return new Options((int)port, address.Equals(IPAddress.Any) ? "*" : listen);
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
            return 1;
        }

        await using (server)
        {
            output.WriteLine($"heap map of the {connection.Description}: {server.Url}  (Ctrl+C stops)");
            if (connection.EmbeddedConnect is { } connect)
            {
                output.WriteLine($"other commands reach this cluster with: clusterheap {connect} stress larson");
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

        return 0;
    }

    /// <summary>A token cancelled by Ctrl+C (SIGINT) or SIGTERM, which then no longer end the process abruptly.</summary>
    public static CancellationToken UntilInterrupted()
    {
        var cts = new CancellationTokenSource();
        foreach (var signal in new[] { PosixSignal.SIGINT, PosixSignal.SIGTERM })
        {
            Signals.Add(PosixSignalRegistration.Create(signal, context =>
            {
                context.Cancel = true;
                cts.Cancel();
            }));
        }

        return cts.Token;
    }

    /// <summary>Kept alive for the process's life: a collected registration stops handling its signal.</summary>
    private static readonly List<PosixSignalRegistration> Signals = [];
}
