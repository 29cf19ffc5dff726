using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Cli;

/// <summary>
/// What every command's action is given besides its parse result: where to write, whether the output is a
/// terminal (progress bars, colour), Ctrl+C (<see cref="Interruptible"/>), and the options shared by every
/// command (connection, colour) so a command reads them from its parse result.
/// </summary>
/// <param name="interrupt">The process's Ctrl+C handler (the CLI), or null (tests).</param>
/// <param name="cancellation">The token commands get when there is no handler (tests cancel it to play Ctrl+C).</param>
public sealed class CliContext(TextWriter output, TextWriter error, bool terminal, Interrupt? interrupt = null, CancellationToken cancellation = default)
{
    public TextWriter Output { get; } = output;
    public TextWriter Error { get; } = error;

    /// <summary>True when <see cref="Output"/> is the console and the console is a terminal.</summary>
    public bool Terminal { get; } = terminal;

    /// <summary>
    /// For a command that cleans up after itself: the token the first Ctrl+C cancels (a second one exits at
    /// once). A command that never asks for it is simply ended by Ctrl+C.
    /// </summary>
    public CancellationToken Interruptible() => interrupt?.Arm() ?? cancellation;

    /// <summary>True once the command was interrupted.</summary>
    public bool Interrupted => interrupt?.Requested ?? cancellation.IsCancellationRequested;

    /// <summary>--gateway, --redis, --embedded, … (recursive: before or after the command).</summary>
    public ConnectionSymbols Connection { get; } = new();

    /// <summary>--color / --no-color (recursive).</summary>
    public Option<bool> Color { get; } = new("--color") { Description = "colour the map and tables even when the output is not a terminal", Recursive = true };

    public Option<bool> NoColor { get; } = new("--no-color") { Description = "no colour (also when NO_COLOR is set)", Recursive = true };

    /// <summary>Colour on a terminal unless NO_COLOR or --no-color; --color forces it.</summary>
    public bool Colour(ParseResult r) =>
        !r.GetValue(NoColor) && (r.GetValue(Color) || (Terminal && Environment.GetEnvironmentVariable("NO_COLOR") is null));
}
