using System.Globalization;
using System.Text.RegularExpressions;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// The collector's shell commands and `clusterheap gc`, on the shared embedded cluster: a gc here collects whatever the
/// other suites left on it, as a user's `gc` does on a cluster in use.
/// </summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed partial class GcShellTests(EmbeddedClusterFixture fixture)
{
    private readonly ClusterConnection _c = fixture.Connection;

    private Task<(int Exit, string Output)> RunAsync(params string[] lines) => ShellScript.RunAsync(_c, lines);

    private Task<HeapPointer> AllocAsync(string command) => ShellScript.AllocAsync(_c, command);

    [GeneratedRegex(@"^gc \d+ @\d+\.\d{3}s \d+%: [\d.]+\+[\d.]+\+[\d.]+ ms clock, [\d.]+\+0/[\d.]+/0\+[\d.]+ ms cpu, \d+->\d+->\d+ MB, (\d+|-) MB goal, 3 nodes \(forced\)$", RegexOptions.Multiline)]
    private static partial Regex TraceLine();

    [GeneratedRegex(@"; (\d+) dangling words; ")]
    private static partial Regex DanglingWords();

    private ICentralGcGrain Gc => _c.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

    [Fact]
    public async Task ReleasedObjectsLinkedAcrossNodesSurviveAGcWhileAReleasedUnlinkedOneIsReclaimed()
    {
        HeapPointer head = await AllocAsync("alloc 64 scan on node0");
        HeapPointer tail = await AllocAsync("alloc 64 scan on node1");
        HeapPointer lone = await AllocAsync("alloc 64 scan on node2");
        (int exit, string output) = await RunAsync(
            $"write {tail} tail-cookie", $"link {head} 2 {tail}", $"release {tail}", $"release {lone}", "gc", $"read {tail} 11");
        Assert.Equal(0, exit);
        Assert.Contains($"{head} word 2 -> {tail}", output);
        Assert.Matches(TraceLine(), output);
        Assert.Contains("|tail-cookie|", output);
        (int gone, string why) = await RunAsync($"read {lone} 8");
        Assert.Equal(1, gone);
        Assert.Contains("error: invalid pointer", why);
        await RunAsync($"free {head}", $"free {tail}");
    }

    [Fact]
    public async Task LinkRefusesAScalarWordWithAnErrorNamingTheBitmap()
    {
        HeapPointer scalar = await AllocAsync("alloc 64 noscan on node0");
        HeapPointer target = await AllocAsync("alloc 64 scan on node1");
        (int exit, string output) = await RunAsync($"link {scalar} 1 {target}", $"link {target} 1.5 {target}", $"link {target} 0 nil");
        Assert.Equal(1, exit);
        Assert.Contains("scalar word (the heap bitmap says", output);
        Assert.Contains("is not a word index", output);
        Assert.Contains($"{target} word 0 -> nil", output);
        await RunAsync($"free {scalar}", $"free {target}");
    }

    [Fact]
    public async Task AGcEndsOnItsFirstAttemptWhenARootAndAPointerWordNameTheZeroSizeBase()
    {
        // The zero-size base opens its node's reservation, outside the arena: words naming it lead to no object. Once
        // its node sent them to itself for ever, the mark never terminated, and every later gc on this cluster outlived
        // the client's 10 s response timeout (the shell tests' `alloc 0` had rooted it).
        HeapPointer zero = await AllocAsync("alloc 0 on node1");
        HeapPointer holder = await AllocAsync("alloc 64 scan on node0");
        ClusterGcStatus before = await Gc.GetGcStatusAsync();
        (int exit, string output) = await RunAsync($"root {zero}", $"link {holder} 0 {zero}", "gc", $"release {zero}", $"free {holder}");
        Assert.True(exit == 0, output);
        Assert.Contains($"rooted {zero}", output);
        Assert.Matches(TraceLine(), output);
        Match dangling = DanglingWords().Match(output);
        Assert.True(dangling.Success && long.Parse(dangling.Groups[1].Value, CultureInfo.InvariantCulture) >= 2, output);
        ClusterGcStatus after = await Gc.GetGcStatusAsync();
        Assert.True(after.Aborted == before.Aborted, $"{after.Aborted - before.Aborted} attempts aborted, the last: {after.LastAbort}");
    }

    [Fact]
    public async Task ReleasingTheZeroSizeBaseSaysNoGcReclaimsItWhileReleasingAnObjectSaysTheNextGcDoes()
    {
        HeapPointer zero = await AllocAsync("alloc 0 on node2");
        HeapPointer some = await AllocAsync("alloc 64 scan on node2");
        (int exit, string output) = await RunAsync($"root {zero}", $"release {zero}", $"release {some}");
        Assert.True(exit == 0, output);
        Assert.Contains($"released {zero}: the zero-size base, which every size-0 allocation returns; it is no object, so no gc reclaims it", output);
        Assert.Contains($"released {some}: the next gc reclaims it unless a root reaches it", output);
        Assert.DoesNotContain($"released {zero}: the next gc", output);
    }

    [Fact]
    public async Task GcCommandPrintsATraceLineAndItsLogAndJson()
    {
        (int exit, string output, string error) = await fixture.RunCliAsync("gc");
        Assert.True(exit == 0, error);
        Assert.Matches(TraceLine(), output.Trim());
        (exit, output, error) = await fixture.RunCliAsync("gc", "--log", "--json");
        Assert.True(exit == 0, error);
        Assert.Contains("\"numGc\":", output);
        Assert.Contains("\"trace\": \"gc ", output);
    }
}
