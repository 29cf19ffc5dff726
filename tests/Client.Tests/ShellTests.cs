using System.Text.RegularExpressions;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>The scripted shell (stdin not a terminal), through the same entry point the CLI uses.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed partial class ShellTests(EmbeddedClusterFixture fixture)
{
    private readonly ClusterConnection _c = fixture.Connection;

    private Task<(int Exit, string Output)> RunAsync(params string[] lines) => ShellScript.RunAsync(_c, lines);

    private Task<HeapPointer> AllocAsync(string command = "alloc 64 on node0") => ShellScript.AllocAsync(_c, command);

    [Fact]
    public async Task AllocPrintsAHexPointerOwnedByTheNamedNode()
    {
        HeapPointer p = await AllocAsync("alloc 100 scan on node1");
        NodeInfo node1 = (await _c.NodesAsync()).Single(n => n.Name == "node1");
        Assert.Equal(node1.Slot, p.Slot);
        Assert.Equal(node1.Generation, p.Generation);
    }

    [Fact]
    public async Task WrittenTextReadsBackAsHexAndAscii()
    {
        HeapPointer p = await AllocAsync();
        (int exit, string output) = await RunAsync($"write {p} \"hello world\"", $"read {p} 11", $"write {p} 0xdeadbeef at 16", $"read {p} 4 at 16", $"free {p}");
        Assert.Equal(0, exit);
        Assert.Contains($"wrote 11 bytes at {p} + 0", output);
        Assert.Contains("68 65 6c 6c 6f 20 77 6f  72 6c 64", output);
        Assert.Contains("|hello world|", output);
        Assert.Contains("+0010  de ad be ef", output);
        Assert.Contains($"freed {p}", output);
    }

    [Fact]
    public async Task SizesAcceptBinaryUnits()
    {
        (int exit, string output) = await RunAsync("alloc 2KiB on node2", "alloc 1MiB on node2");
        Assert.Equal(0, exit);
        Assert.Contains("2 KiB noscan on node2 (class 38, 2048 B slots)", output);
        Assert.Contains("1 MiB noscan on node2 (large, a span of 128 pages)", output);
    }

    public static TheoryData<string, string> ErrorCases => new()
    {
        { "alloc 12XB", "error: alloc: '12XB' is not a size" },
        { "alloc", "error: alloc SIZE [scan|noscan] [on NODE]" },
        { "alloc 8 on nodeX", "error: unknown node 'nodeX' (live nodes: node0, node1, node2)" },
        { "stats nodeX", "error: unknown node 'nodeX'" },
        { "spans nodeX", "error: unknown node 'nodeX'" },
        { "map nodeX", "error: unknown node 'nodeX'" },
        { "spans node0 99", "error: spans: '99' is not a size class" },
        { "free zz", "error: 'zz' is not a pointer" },
        { "free {p}", "" }, // the first free succeeds...
        { "free {p}\nfree {p}", "error: invalid pointer" }, // ...the second is a double free
        { "free {p+8}", "error: invalid pointer" },
        { "read {p} 65", "error: out of bounds" },
        { "read {p} 8 at 60", "error: out of bounds" },
        { "write {p} 0x0102 at 63", "error: out of bounds" },
        { "write {p} 0xzz", "error: '0xzz' is not an even number of hex digits" },
        { "write {p}", "error: write PTR TEXT|0xHEX [at OFFSET]" },
        { "read 0x7777c0c000000000", "error: node gone" },
        { "frobnicate", "error: unknown command 'frobnicate' (type help)" },
        { "write {p} \"open quote", "error: unterminated quote" },
        { "limit lots", "error: limit: 'lots' is not a size" },
        { "nodes extra", "error: nodes takes no arguments" },
        { "read {p} 4 at 4611686018427387904", "error: read: offset 4611686018427387904 from" },
        { "read {p} 4 at 300TiB", "leaves the 48-bit address space" },
        { "write {p} hi at 4611686018427387904", "error: write: offset 4611686018427387904 from" },
        { "write {p} hi at 300TiB", "leaves the 48-bit address space" },
        { "read {p} 4 at 1TiB", "error: node gone" }, // inside the address space, in the next slot
        { "map --width 5", "error: map --width: '5' is not a width from 16 to 1024" },
    };

    [Fact]
    public async Task TheZeroSizeBaseIsFreedAsANoOpOnItsNode()
    {
        HeapPointer zero = await AllocAsync("alloc 0 on node1");
        NodeInfo node1 = (await _c.NodesAsync()).Single(n => n.Name == "node1");
        Assert.Equal(node1.Slot, zero.Slot);
        (int exit, string output) = await RunAsync($"free {zero}", $"free {zero}", "alloc 0 on node1");
        Assert.True(exit == 0, output);
        Assert.Equal(2, Regex.Matches(output, $"freed {zero}").Count);
        Assert.Contains($"{zero}  0 B noscan on node1 (the zero-size base)", output);
    }

    [Fact]
    public async Task PipedHelpEndsWithANewlineSoTheNextEchoStartsALine()
    {
        (int exit, string output) = await RunAsync("help", "nodes");
        Assert.Equal(0, exit);
        Assert.Contains("(also exit, or end of input)\n> nodes\n", output.Replace("\r", "", StringComparison.Ordinal));
    }

    [Theory]
    [MemberData(nameof(ErrorCases))]
    public async Task AFailedCommandPrintsErrorAndTheShellGoesOn(string commands, string expected)
    {
        HeapPointer p = await AllocAsync();
        string[] lines = [.. commands.Replace("{p+8}", p.Offset(8).ToString(), StringComparison.Ordinal).Replace("{p}", p.ToString(), StringComparison.Ordinal).Split('\n'), "nodes"];
        (int exit, string output) = await RunAsync(lines);
        if (expected.Length == 0)
        {
            Assert.Equal(0, exit);
            Assert.DoesNotContain("error:", output);
        }
        else
        {
            Assert.Equal(1, exit);
            Assert.Contains(expected, output);
            Assert.Single(output.Split('\n'), l => l.StartsWith("error: ", StringComparison.Ordinal));
        }
        // The shell went on: the next command ran.
        Assert.Contains("node0     0", output);
    }

    [Fact]
    public async Task StatsNodesSpansAndVerifyDescribeTheLiveCluster()
    {
        HeapPointer p = await AllocAsync("alloc 48 on node2");
        (int exit, string output) = await RunAsync("nodes", "stats", "stats node2", "spans node2 5", "verify", $"free {p}");
        Assert.Equal(0, exit);
        foreach (string n in new[] { "node0", "node1", "node2" }) Assert.Contains(n, output);
        Assert.Matches(@"central heap on node[012], \d+ active lease", output);
        Assert.Contains("cluster  ", output);
        Assert.Contains("HeapAlloc", output);
        Assert.Contains("by size:", output);
        Assert.Matches(@"0x[0-9a-f]{12}\s+1\s+in use\s+5 noscan\s+48", output);
        Assert.Contains("ok    cluster:", output);
        Assert.Equal(4, Regex.Matches(output, "^ok    ", RegexOptions.Multiline).Count);
    }

    [Fact]
    public async Task LimitSetsAndClearsTheClusterMemoryLimit()
    {
        (int exit, string output) = await RunAsync("limit 3GiB", "limit", "limit none");
        Assert.Equal(0, exit);
        Assert.Equal(2, Regex.Matches(output, "memory limit 3 GiB").Count);
        Assert.Contains("memory limit none", output);
        Assert.Equal(long.MaxValue, await _c.CentralHeap.GetMemoryLimitAsync());
    }

    [Fact]
    public async Task QuitStopsReadingAndHelpNamesEveryCommand()
    {
        (int exit, string output) = await RunAsync("help", "history", "quit", "nodes");
        Assert.Equal(0, exit);
        foreach (string c in new[] { "alloc SIZE", "free PTR", "write PTR", "read PTR", "stats [NODE]", "spans NODE", "map [NODE]", "nodes", "verify", "limit [SIZE", "help", "quit" })
            Assert.Contains(c, output);
        Assert.Contains("   2  history", output);
        Assert.DoesNotContain("node0     0", output);
    }

    [Fact]
    public async Task OneShotCommandsRunTheShellCommandOnce()
    {
        (int exit, string output, _) = await fixture.RunCliAsync("nodes");
        Assert.Equal(0, exit);
        Assert.Contains("node1", output);
        (exit, output, _) = await fixture.RunCliAsync("verify");
        Assert.Equal(0, exit);
        Assert.Contains("ok    cluster:", output);
        (exit, output, _) = await fixture.RunCliAsync("stats", "nodeX");
        Assert.Equal(1, exit);
        Assert.Contains("error: unknown node 'nodeX'", output);
    }
}
