using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Shell;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap shell`: interactive (prompt, line editing, history, help) when standard input is a
/// terminal; otherwise one command per line, plain results, so it can be scripted. The exit code is
/// 1 when any scripted command failed, 0 otherwise. Interactive, Ctrl+C drops the line being typed and
/// Ctrl+D on an empty line leaves.
/// </summary>
public static class ShellCommand
{
    public static Command Create(CliContext cli)
    {
        Command command = CommandTree.New("shell",
            "An interactive shell over the cluster (type help): alloc, free, write, read, stats, spans, map, nodes, " +
            "verify, limit. When standard input is not a terminal it runs one command per line and exits 1 if any failed.",
            "clusterheap shell", "printf 'alloc 100\\nstats\\n' | clusterheap shell --gateway 127.0.0.1:30000");
        command.SetAction((r, _) => Program.WithClusterAsync(cli.Connection.Read(r), cli, c => RunAsync(c, cli.Output, cli.Colour(r))));
        return command;
    }

    public static async Task<int> RunAsync(ClusterConnection connection, TextWriter output, bool color)
    {
        if (!Console.IsInputRedirected && ReferenceEquals(output, Console.Out))
        {
            return await InteractiveAsync(connection, color);
        }
        return await ScriptAsync(connection, Console.In, output);
    }

    /// <summary>Runs every line of <paramref name="input"/>; echoes each command as `&gt; line` before its result.</summary>
    public static async Task<int> ScriptAsync(ClusterConnection connection, TextReader input, TextWriter output, bool echo = true)
    {
        var session = new ShellSession(connection, output);
        while (await input.ReadLineAsync() is { } line)
        {
            if (string.IsNullOrWhiteSpace(line) || line.TrimStart().StartsWith('#')) continue;
            if (echo) output.WriteLine($"> {line.Trim()}");
            if (!await session.ExecuteAsync(line)) break;
        }
        return session.Failures == 0 ? 0 : 1;
    }

    private static async Task<int> InteractiveAsync(ClusterConnection connection, bool color)
    {
        Console.WriteLine($"clusterheap shell: {connection.Description}");
        Console.WriteLine("type help for the commands, quit or Ctrl+D to leave; ↑/↓ recall earlier commands, Ctrl+C drops the line");
        string home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var editor = new LineEditor(home.Length == 0 ? null : Path.Combine(home, ".clusterheap_history"));
        var session = new ShellSession(connection, Console.Out, color);
        while (editor.ReadLine("clusterheap> ") is { } line)
        {
            if (!await session.ExecuteAsync(line)) break;
        }
        return 0;
    }
}
