using System.CommandLine.Help;
using System.CommandLine.Invocation;
using ClusterHeap.Client.Commands;

namespace ClusterHeap.Client.Cli;

/// <summary>
/// The <c>clusterheap</c> command line, built on System.CommandLine: every command and subcommand has
/// --help (its options, the connection options, an example and the exit codes), unknown options and
/// typos are parse errors with a "did you mean" (exit 2), --version prints the version, and
/// <c>completion bash</c> prints a bash completion script that asks the parser itself (its [suggest]
/// directive), so completion never falls out of step with the commands.
/// </summary>
/// <remarks>
/// Adding a command: write <c>Commands/FooCommand.cs</c> with <c>public static Command Create(CliContext cli)</c>
/// that declares its arguments and options (sizes and durations through <see cref="Symbols"/>), gives the
/// description an example with <see cref="Describe"/>, and sets an action returning an exit code
/// (<see cref="ExitCodes"/>; connect with <see cref="Program.WithClusterAsync"/>; throw
/// <see cref="UsageException"/> for a bad combination). Then add <c>FooCommand.Create</c> to
/// <see cref="Commands"/>. A test in CliTests checks that every command's --help exits 0 and lists its options.
/// </remarks>
public static class CommandTree
{
    /// <summary>Every top-level command, in --help order.</summary>
    private static readonly Func<CliContext, Command>[] Commands =
    [
        DemoCommand.Create,
        ShellCommand.Create,
        StressCommand.Create,
        InspectCommand.Stats,
        InspectCommand.Nodes,
        InspectCommand.Verify,
        InspectCommand.Spans,
        InspectCommand.Map,
        GcCommand.Create,
        Web.WebCommand.Create,
        BenchCommand.Create,
        InfoCommand.Create,
        CompletionCommand.Create,
    ];

    public static RootCommand Build(CliContext cli)
    {
        var root = new RootCommand(
            "ClusterHeap: Go's allocator (mallocinit/mallocgc) in C#, scaled out over an Orleans cluster. With no " +
            "connection option a command starts an embedded cluster of 3 silos in this process; --gateway or --redis " +
            "joins a running one (scripts/cluster.sh connect prints them).");
        root.Examples("clusterheap demo", "clusterheap stress larson --duration 20s --gateway 127.0.0.1:30000", "clusterheap help stress");
        foreach (Option o in cli.Connection.All) root.Options.Add(o);
        root.Options.Add(cli.Color);
        root.Options.Add(cli.NoColor);
        foreach (Func<CliContext, Command> create in Commands) root.Subcommands.Add(create(cli));
        root.SetAction(r => ShowHelp(r, ExitCodes.Ok));
        foreach (HelpOption h in root.Options.OfType<HelpOption>()) h.Action = new ExamplesHelp(h.Action!);
        return root;
    }

    /// <summary>A command: name, what it does (one or two sentences; --help and the command list show it), examples.</summary>
    public static Command New(string name, string description, params string[] examples) => new Command(name, description).Examples(examples);

    /// <summary>Adds arguments, options and subcommands to <paramref name="command"/>.</summary>
    public static Command With(this Command command, params Symbol[] symbols)
    {
        foreach (Symbol s in symbols)
        {
            switch (s)
            {
                case Argument a: command.Arguments.Add(a); break;
                case Option o: command.Options.Add(o); break;
                case Command c: command.Subcommands.Add(c); break;
            }
        }
        return command;
    }

    /// <summary>Gives <paramref name="command"/> the examples its --help shows after the options.</summary>
    public static Command Examples(this Command command, params string[] examples)
    {
        ExampleTable.AddOrUpdate(command, examples);
        return command;
    }

    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Command, string[]> ExampleTable = [];

    /// <summary>Prints the help of the command <paramref name="r"/> stopped at; a group run bare (`bench`) is a usage error.</summary>
    public static int ShowHelp(ParseResult r, int exitCode)
    {
        new ExamplesHelp(new HelpAction()).Invoke(r);
        return exitCode;
    }

    /// <summary>System.CommandLine's help, then the command's examples and the exit codes.</summary>
    private sealed class ExamplesHelp(CommandLineAction help) : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult r)
        {
            if (help is HelpAction h) h.MaxWidth = 120;
            ((SynchronousCommandLineAction)help).Invoke(r);
            TextWriter output = r.InvocationConfiguration.Output;
            if (ExampleTable.TryGetValue(r.CommandResult.Command, out string[]? examples) && examples.Length > 0)
            {
                output.WriteLine(examples.Length == 1 ? "Example:" : "Examples:");
                foreach (string e in examples) output.WriteLine("  " + e);
                output.WriteLine();
            }
            output.WriteLine(ExitCodes.Help);
            return ExitCodes.Ok;
        }
    }

    /// <summary>All command paths, for tests and the README ("demo", "bench calls", …).</summary>
    public static IEnumerable<Command> All(Command c) => c.Subcommands.SelectMany(s => All(s).Prepend(s));
}
