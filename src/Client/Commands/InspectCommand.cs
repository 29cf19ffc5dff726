using System.CommandLine.Parsing;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Render;
using ClusterHeap.Client.Shell;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// The one-shot `clusterheap stats [NODE]`, `nodes`, `verify`, `spans NODE [CLASS]` and `map [NODE]`: the
/// shell's command of the same name, run once (or, with --json, the same data as one JSON document on
/// standard output). Exit code 1 when it failed or the verifier found a problem.
/// </summary>
public static class InspectCommand
{
    public static Command Stats(CliContext cli)
    {
        Argument<string?> node = NodeArgument("one node's MemStats and BySize instead of the cluster's table");
        Option<bool> json = Json();
        Command command = CommandTree.New("stats",
            "Cluster statistics: one row per node and the sum (Go's MemStats names), the memory limit and the leases; " +
            "or one node's MemStats and its size classes.",
            "clusterheap stats", "clusterheap stats node-1 --json $(scripts/cluster.sh connect)")
            .With(node, json);
        command.SetAction((r, _) => WithSession(cli, r, async (c, session) =>
        {
            string? name = r.GetValue(node);
            if (!r.Get(json)) return await session.ExecuteAsync(name is null ? "stats" : $"stats {Quote(name)}") && session.Failures == 0;
            NodeInfo? n = name is null ? null : await session.FindNodeAsync(name);
            cli.Output.WriteLine(n is null ? JsonText.Cluster(await c.CentralHeap.GetStatsAsync()) : JsonText.Node(await c.Node(n.Name).GetStatsAsync()));
            return true;
        }));
        return command;
    }

    public static Command Nodes(CliContext cli)
    {
        Option<bool> json = Json();
        Command command = CommandTree.New("nodes",
            "Live nodes: name, arena slot, generation, reservation address, silo and granted bytes; where the central heap runs.",
            "clusterheap nodes --json $(scripts/cluster.sh connect)")
            .With(json);
        command.SetAction((r, _) => WithSession(cli, r, async (c, session) =>
        {
            if (!r.Get(json)) return await session.ExecuteAsync("nodes") && session.Failures == 0;
            cli.Output.WriteLine(JsonText.Nodes(await c.NodesAsync(), await c.CentralHeap.GetViewAsync()));
            return true;
        }));
        return command;
    }

    public static Command Verify(CliContext cli)
    {
        Option<bool> json = Json();
        Command command = CommandTree.New("verify",
            "Run the heap verifier on every node and the cluster tier; exit 1 when an invariant is broken.",
            "clusterheap verify $(scripts/cluster.sh connect)")
            .With(json);
        command.SetAction((r, _) => WithSession(cli, r, async (c, session) =>
        {
            if (!r.Get(json)) return await session.VerifyAsync();
            VerifyResult[] results = await c.CentralHeap.VerifyAsync();
            cli.Output.WriteLine(JsonText.Verify(results));
            return results.All(v => v.Ok);
        }));
        return command;
    }

    public static Command Spans(CliContext cli)
    {
        Argument<string> node = new("NODE") { Description = "the node whose spans to list" };
        Argument<int?> sizeClass = new("CLASS")
        {
            Description = $"only spans of this size class (0 = large, 1..{SizeClasses.NumClasses - 1})",
            Arity = ArgumentArity.ZeroOrOne,
        };
        sizeClass.Validators.Add(v =>
        {
            if (v.GetValueOrDefault<int?>() is { } k && (k < 0 || k >= SizeClasses.NumClasses))
                v.AddError($"CLASS: {k} is not a size class (0 = large, 1..{SizeClasses.NumClasses - 1})");
        });
        Option<bool> json = Json();
        Command command = CommandTree.New("spans",
            "A node's spans: start, pages, state, size class, slots in use, the mcache holding it, lease, released pages.",
            "clusterheap spans node0 5", "clusterheap spans node-1 --json $(scripts/cluster.sh connect)")
            .With(node, sizeClass, json);
        command.SetAction((r, _) => WithSession(cli, r, async (c, session) =>
        {
            string name = r.GetValue(node)!;
            int? k = r.GetValue(sizeClass);
            if (!r.Get(json)) return await session.ExecuteAsync($"spans {Quote(name)}{(k is null ? "" : $" {k}")}") && session.Failures == 0;
            NodeInfo n = await session.FindNodeAsync(name);
            cli.Output.WriteLine(JsonText.Spans(n.Name, await c.Node(n.Name).GetSpansAsync(k ?? -1)));
            return true;
        }));
        return command;
    }

    public static Command Map(CliContext cli)
    {
        Argument<string?> node = NodeArgument("draw only this node's arena");
        Option<string?> svg = new("--svg") { Description = "draw the whole cluster as an SVG picture into FILE instead", HelpName = "FILE" };
        Option<long> width = Symbols.Count("--width", "cells per row in the terminal", TerminalMap.DefaultWidth, 16, 1024);
        Command command = CommandTree.New("map",
            "The heap map: each node's arena, spans coloured by size class and shaded by occupancy, leased, free and released pages.",
            "clusterheap map", "clusterheap map --svg heap.svg $(scripts/cluster.sh connect)")
            .With(node, svg, width);
        command.SetAction((r, _) => WithSession(cli, r, async (_, session) =>
        {
            var line = new List<string> { "map", "--width", r.Get(width).ToString(System.Globalization.CultureInfo.InvariantCulture) };
            if (r.Get(svg) is { } file) line.AddRange(["--svg", Quote(file)]);
            if (r.GetValue(node) is { } name) line.Add(Quote(name));
            return await session.ExecuteAsync(string.Join(' ', line)) && session.Failures == 0;
        }));
        return command;
    }

    private static Argument<string?> NodeArgument(string description)
    {
        var node = new Argument<string?>("NODE") { Description = description, Arity = ArgumentArity.ZeroOrOne };
        node.Validators.Add(v =>
        {
            // An unknown option is not a node name (`stats --jsn`).
            if (v.Tokens is [{ Value: var t }] && t.StartsWith('-') && v.Parent is CommandResult c)
            {
                string[] near = Suggestions.For(t, c.Command);
                v.AddError($"unknown option '{t}'" + (near.Length > 0 ? $": did you mean {string.Join(" or ", near)}?" : ""));
            }
        });
        return node;
    }

    private static Option<bool> Json() => new("--json") { Description = "print the data as one JSON document instead of a table" };

    private static string Quote(string word) => "\"" + word.Replace("\\", "\\\\", StringComparison.Ordinal).Replace("\"", "\\\"", StringComparison.Ordinal) + "\"";

    /// <summary>Connects, runs <paramref name="body"/> with a shell session on the connection; exit 0 when it returned true.</summary>
    /// <remarks>A refusal that depends on the cluster (an unknown node) is a failed command (1), as in the shell, not a usage error.</remarks>
    private static Task<int> WithSession(CliContext cli, ParseResult r, Func<ClusterConnection, ShellSession, Task<bool>> body) =>
        Program.WithClusterAsync(cli.Connection.Read(r), cli, async c =>
        {
            try
            {
                return await body(c, new ShellSession(c, cli.Output, cli.Colour(r))) ? ExitCodes.Ok : ExitCodes.Failed;
            }
            catch (UsageException e)
            {
                cli.Error.WriteLine($"error: {e.Message}");
                return ExitCodes.Failed;
            }
        });
}
