using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Shell;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// The one-shot `clusterheap stats [NODE]`, `nodes`, `map [NODE] [--svg FILE]` and `verify`: the shell's
/// command of the same name, run once. Exit code 1 when it failed (or the verifier found a problem).
/// </summary>
public static class InspectCommand
{
    /// <summary>The shell line for <paramref name="command"/> and its arguments (connection options already taken).</summary>
    public static string Parse(string command, ArgReader args)
    {
        var words = new List<string> { command };
        if (args.Option("svg") is { } svg) words.AddRange(["--svg", svg]);
        if (args.Option("width") is { } width) words.AddRange(["--width", width]);
        while (args.Positional() is { } w) words.Add(w);
        args.Done(command);
        return string.Join(' ', words.Select(w => w.Contains(' ', StringComparison.Ordinal) ? $"\"{w}\"" : w));
    }

    public static async Task<int> RunAsync(string command, string line, ClusterConnection connection, TextWriter output, bool color)
    {
        var session = new ShellSession(connection, output, color);
        if (command == "verify")
        {
            if (line != "verify") throw new UsageException("verify takes no arguments");
            return await session.VerifyAsync() ? 0 : 1;
        }
        await session.ExecuteAsync(line);
        return session.Failures == 0 ? 0 : 1;
    }
}
