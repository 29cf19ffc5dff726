using System.CommandLine.Invocation;
using System.CommandLine.Parsing;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client;

/// <summary>
/// The `clusterheap` command: parses with the tree of <see cref="CommandTree"/> (one file per command under
/// Commands/), runs the command, and turns what went wrong into one <c>error:</c> line and an exit code
/// (<see cref="ExitCodes"/>): no exception reaches the user as a stack trace.
/// </summary>
public static class Program
{
    public static async Task<int> Main(string[] argv)
    {
        using var interrupt = Interrupt.Install(Console.Error);
        var cli = new CliContext(Console.Out, Console.Error, terminal: !Console.IsOutputRedirected, interrupt);
        return await RunAsync(argv, cli);
    }

    /// <summary>Runs a command line with output and error captured (tests), no terminal, and no Ctrl+C handler.</summary>
    public static Task<int> RunAsync(string[] argv, TextWriter output, TextWriter error, CancellationToken cancellation = default) =>
        RunAsync(argv, new CliContext(output, error, terminal: false, cancellation: cancellation));

    public static async Task<int> RunAsync(string[] argv, CliContext cli)
    {
        if (argv is ["help", .. var rest]) argv = [.. rest, "--help"]; // `clusterheap help stress` as `stress --help`
        argv = Commands.BenchCommand.RingSpelling(argv);
        RootCommand root = CommandTree.Build(cli);
        ParseResult parsed = root.Parse(argv);
        var config = new InvocationConfiguration
        {
            Output = cli.Output,
            Error = cli.Error,
            EnableDefaultExceptionHandler = false,
            ProcessTerminationTimeout = null, // Ctrl+C is Interrupt's
        };
        if (parsed.Errors.Count > 0 && parsed.Action is ParseErrorAction)
        {
            foreach (ParseError e in parsed.Errors) cli.Error.WriteLine($"error: {e.Message}");
            foreach (string token in parsed.UnmatchedTokens)
            {
                string[] near = Suggestions.For(token, parsed.CommandResult.Command);
                if (near.Length > 0) cli.Error.WriteLine($"'{token}': did you mean {string.Join(" or ", near)}?");
            }
            cli.Error.WriteLine($"see '{CommandPath(parsed)} --help' for the options");
            return ExitCodes.Usage;
        }

        try
        {
            return await parsed.InvokeAsync(config);
        }
        catch (UsageException e)
        {
            cli.Error.WriteLine($"error: {e.Message}");
            cli.Error.WriteLine($"see '{CommandPath(parsed)} --help' for the options");
            return ExitCodes.Usage;
        }
        catch (OperationCanceledException) when (cli.Interrupted)
        {
            cli.Error.WriteLine("interrupted");
            return ExitCodes.Interrupted;
        }
        catch (Exception e) when (e is OrleansException or TimeoutException)
        {
            cli.Error.WriteLine($"error: the cluster failed the command ({Plain(e)})");
            return ExitCodes.Failed;
        }
        catch (Exception e) when (e is Heap.HeapInitException or Heap.HeapOutOfMemoryException or Heap.InvalidSizeException or ClusterHeapException or IOException or UnauthorizedAccessException)
        {
            cli.Error.WriteLine($"error: {e.Message}");
            return ExitCodes.Failed;
        }
        catch (Exception e)
        {
            cli.Error.WriteLine($"error: unexpected {e.GetType().Name}: {e.Message}");
            return ExitCodes.Failed;
        }
    }

    /// <summary>Connects as <paramref name="options"/> say, runs <paramref name="body"/>, disconnects (stopping embedded silos).</summary>
    /// <remarks>
    /// A cluster that cannot be reached is one plain sentence naming what was tried, exit 3; Orleans' own text
    /// (its retry timers and internal addresses) stays out of it.
    /// </remarks>
    public static async Task<int> WithClusterAsync(ConnectOptions options, CliContext cli, Func<ClusterConnection, Task<int>> body, CancellationToken cancellation = default)
    {
        ClusterConnection connection;
        var trying = System.Diagnostics.Stopwatch.StartNew();
        try
        {
            connection = await ClusterConnection.OpenAsync(options, cancellation);
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception e) when (e is not UsageException)
        {
            cli.Error.WriteLine(options.IsEmbedded
                ? $"error: could not start {options.Target} in this process: {e.GetBaseException().Message}"
                : $"error: no cluster answered: tried {options.Target} for {trying.Elapsed.TotalSeconds:0} s " +
                  "(is it running? scripts/cluster.sh status; --connect-timeout waits longer)");
            return ExitCodes.NoCluster;
        }
        await using (connection)
        {
            return await body(connection);
        }
    }

    /// <summary>"clusterheap bench calls": the command the parse stopped at, for "see … --help".</summary>
    private static string CommandPath(ParseResult r)
    {
        var names = new List<string>();
        for (SymbolResult? s = r.CommandResult; s is not null; s = s.Parent)
        {
            if (s is CommandResult c) names.Insert(0, c.Command is RootCommand ? "clusterheap" : c.Command.Name);
        }
        return string.Join(' ', names);
    }

    /// <summary>An Orleans failure in a few words: its type, and its message up to the first line.</summary>
    private static string Plain(Exception e) => $"{e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}";
}
