using System.CommandLine;
using System.CommandLine.Parsing;
using System.Text.RegularExpressions;
using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// The command line as .NET and Go tool users expect it: --help on every command and subcommand, --version,
/// typos refused with exit 2 and a suggestion, sizes and durations read by the one shared parser with errors
/// that name the option as typed, and bash completion from the parser itself. No cluster is needed here.
/// </summary>
public sealed partial class CliTests
{
    private static async Task<(int Exit, string Output, string Error)> RunAsync(params string[] args)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Program.RunAsync(args, output, error);
        return (exit, output.ToString(), error.ToString());
    }

    private static RootCommand Tree() => CommandTree.Build(new CliContext(TextWriter.Null, TextWriter.Null, terminal: false));

    /// <summary>Every command path: "demo", "bench local", "info classes", …</summary>
    public static TheoryData<string> CommandPaths()
    {
        var data = new TheoryData<string>();
        foreach (Command c in CommandTree.All(Tree())) data.Add(Path(c));
        return data;
    }

    private static string Path(Command c)
    {
        var names = new List<string>();
        for (Symbol? s = c; s is Command k && s is not RootCommand; s = k.Parents.FirstOrDefault()) names.Insert(0, k.Name);
        return string.Join(' ', names);
    }

    [Fact]
    public void EveryCommandTheIssueNamesIsInTheTree()
    {
        string[] paths = [.. CommandTree.All(Tree()).Select(Path)];
        foreach (string p in new[] { "demo", "shell", "stress", "map", "stats", "nodes", "verify", "spans", "bench local", "bench calls", "info classes", "info layout", "completion" })
            Assert.Contains(p, paths);
    }

    [Theory]
    [MemberData(nameof(CommandPaths))]
    public async Task HelpOnEveryCommandExitsZeroAndListsItsOptionsAndAnExample(string path)
    {
        (int exit, string output, string error) = await RunAsync([.. path.Split(' '), "--help"]);
        Assert.True(exit == 0, error);
        Command command = CommandTree.All(Tree()).Single(c => Path(c) == path);
        foreach (Option o in command.Options) Assert.Contains(o.Name, output);
        foreach (Argument a in command.Arguments) Assert.Contains($"<{a.Name}>", output);
        Assert.Contains("--gateway", output); // the connection options, from the root
        Assert.Matches(@"Examples?:\n  .*clusterheap ", output.Replace("\r", "", StringComparison.Ordinal));
        Assert.Contains("exit codes: 0 ok, 1 failed", output);
        Assert.Contains("130 interrupted", output);
        Assert.All(output.Split('\n'), line => Assert.True(line.TrimEnd().Length <= 120, $"{line.Length} columns: {line}"));
    }

    [Fact]
    public async Task HelpWordAndBareGroupsShowHelp()
    {
        (int exit, string output, _) = await RunAsync("help", "stress");
        Assert.Equal(0, exit);
        Assert.Contains("--duration", output);
        (exit, output, _) = await RunAsync("bench");
        Assert.Equal(2, exit); // a group without its subcommand ran nothing
        Assert.Contains("local", output);
        (exit, output, _) = await RunAsync();
        Assert.Equal(0, exit);
        Assert.Contains("Commands:", output);
    }

    [Fact]
    public async Task VersionPrintsTheProductVersion()
    {
        (int exit, string output, _) = await RunAsync("--version");
        Assert.Equal(0, exit);
        Assert.Matches(VersionLine(), output.Trim());
    }

    [GeneratedRegex(@"^\d+\.\d+\.\d+")]
    private static partial Regex VersionLine();

    [Theory]
    [InlineData(new[] { "--verbos" }, "--verbose")]
    [InlineData(new[] { "--bogus=1" }, "--bogus=1")]
    [InlineData(new[] { "stres" }, "stress")]
    [InlineData(new[] { "stress", "larson", "--durtion", "5s" }, "--duration")]
    [InlineData(new[] { "bench", "calss" }, "calls")]
    [InlineData(new[] { "stats", "--jsn" }, "--json")]
    public async Task UnknownOptionsAndTyposExitTwoWithASuggestion(string[] args, string suggestion)
    {
        (int exit, string output, string error) = await RunAsync(args);
        Assert.Equal(2, exit);
        Assert.Contains(suggestion, error);
        Assert.Contains("--help", error);
        Assert.DoesNotContain("Commands:", output); // no help dump in place of the error
    }

    [Theory]
    [InlineData("1.5GiB", 3L << 29)]
    [InlineData("64MiB", 64L << 20)]
    [InlineData("8k", 8192L)]
    [InlineData("4096", 4096L)]
    public void ClientSizesUseTheSharedParser(string text, long bytes)
    {
        ParseResult r = Tree().Parse(["stress", "larson", "--size", text, "--arena-size", text]);
        Assert.Empty(r.Errors);
        var size = (Option<long>)r.CommandResult.Command.Options.Single(o => o.Name == "--size");
        Assert.Equal(bytes, r.Get(size));
    }

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("2m", 120_000)]
    [InlineData("20", 20_000)]
    [InlineData("1h", 3_600_000)]
    public void ClientDurationsUseTheSharedParser(string text, int milliseconds)
    {
        ParseResult r = Tree().Parse(["stress", "larson", "--duration", text]);
        Assert.Empty(r.Errors);
        var duration = (Option<TimeSpan>)r.CommandResult.Command.Options.Single(o => o.Name == "--duration");
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), r.Get(duration));
    }

    [Fact]
    public void AnOptionLeftOutTakesItsDefault()
    {
        ParseResult r = Tree().Parse(["stress", "larson"]);
        var duration = (Option<TimeSpan>)r.CommandResult.Command.Options.Single(o => o.Name == "--duration");
        Assert.Equal(TimeSpan.FromSeconds(10), r.Get(duration));
    }

    [Theory]
    [InlineData(new[] { "bench", "local", "-size", "12XB" }, "-size: '12XB' is not a size")]
    [InlineData(new[] { "bench", "local", "--size", "12XB" }, "--size: '12XB' is not a size")]
    [InlineData(new[] { "--arena-size", "1.5", "shell" }, "--arena-size: '1.5' is not a size in whole bytes")]
    [InlineData(new[] { "stress", "larson", "--duration", "2x" }, "--duration: '2x' is not a duration")]
    [InlineData(new[] { "stress", "larson", "--duration", "0s" }, "--duration: '0s' is not a duration")]
    [InlineData(new[] { "--connect-timeout=soon", "nodes" }, "--connect-timeout: 'soon' is not a duration")]
    [InlineData(new[] { "stress", "larson", "--workers", "-3" }, "--workers: '-3' is not a whole number from 1")]
    [InlineData(new[] { "--gateway", "nohost", "nodes" }, "--gateway: 'nohost' is not host:port")]
    public async Task BadValuesExitTwoNamingTheOptionAsTyped(string[] args, string message)
    {
        (int exit, _, string error) = await RunAsync(args);
        Assert.Equal(2, exit);
        Assert.Contains(message, error);
    }

    [Fact]
    public async Task ContradictoryConnectionOptionsAreAUsageError()
    {
        (int exit, _, string error) = await RunAsync("nodes", "--gateway", "127.0.0.1:9", "--redis", "127.0.0.1:9");
        Assert.Equal(2, exit);
        Assert.Contains("error: give --gateway or --redis, not both", error);
    }

    [Fact]
    public async Task BenchLocalTakesTheRingOptionsInBothSpellings()
    {
        (int exit, string output, string error) = await RunAsync("bench", "local", "-size", "1.5KiB", "--live", "100", "-ops", "1000", "--arena-size", "64MiB");
        Assert.True(exit == 0, error);
        Assert.Contains("clusterheap ring size=1536 ", output);
        Assert.Contains("live=100 ops=1000 ", output);
        Assert.Contains("verify=ok", output);
    }

    [Theory]
    [InlineData("--gateway", "at gateway")]
    [InlineData("--redis", "through redis")]
    public async Task AnUnreachableClusterIsOnePlainSentenceAndExitThreeWithinTheTimeout(string option, string how)
    {
        int port = Connect.Endpoints.FreePorts(1)[0];
        var clock = System.Diagnostics.Stopwatch.StartNew();
        (int exit, string output, string error) = await RunAsync("stats", option, $"127.0.0.1:{port}", "--connect-timeout", "1s");
        Assert.Equal(3, exit);
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"gave up after {clock.Elapsed}");
        Assert.Equal("", output);
        string[] lines = error.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.Matches($@"^error: no cluster answered: tried cluster 'clusterheap' {how} 127\.0\.0\.1:{port} for \d+ s \(is it running\?", lines[0]);
        Assert.DoesNotContain("retry", error, StringComparison.OrdinalIgnoreCase);
        Assert.DoesNotContain("Exception", error);
    }

    [Theory]
    [InlineData("clusterheap stre", "stress")]
    [InlineData("clusterheap stress --dur", "--duration")]
    [InlineData("clusterheap stress gro", "grow-shrink")]
    [InlineData("clusterheap bench ca", "calls")]
    public async Task CompletionAsksTheParser(string line, string expected)
    {
        // What the bash script of `clusterheap completion bash` runs for each Tab.
        (int exit, string output, _) = await RunAsync($"[suggest:{line.Length}]", line);
        Assert.Equal(0, exit);
        Assert.Contains(expected, output.Split('\n', StringSplitOptions.TrimEntries));
        (exit, output, _) = await RunAsync("completion", "bash");
        Assert.Equal(0, exit);
        Assert.Contains("complete -o default -F _clusterheap_complete clusterheap", output);
    }
}
