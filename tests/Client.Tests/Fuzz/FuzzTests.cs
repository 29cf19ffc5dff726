using System.Text.RegularExpressions;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Shell;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests.Fuzz;

/// <summary>
/// The fuzz harness: random and hostile input (<see cref="Hostile"/>) against an embedded cluster of its own,
/// through the shell and through the grain API. Claims: the session survives every line; each shell command
/// either succeeds or prints exactly one <c>error:</c> line naming its problem (never an unforeseen exception);
/// each grain call either returns or fails with a ClusterHeap error (a named kind, not an Orleans or runtime
/// exception); and the verifier is clean afterwards on every node and the cluster tier.
/// </summary>
/// <remarks>
/// The short form runs in `dotnet test` (CI). A longer run: CLUSTERHEAP_FUZZ_ITERATIONS=20000 (and
/// CLUSTERHEAP_FUZZ_SEED=N to replay a seed) with `dotnet test tests/Client.Tests --filter FuzzTests`.
/// </remarks>
public sealed partial class FuzzTests : IAsyncLifetime
{
    private ClusterConnection _c = null!;

    private static int Iterations => int.TryParse(Environment.GetEnvironmentVariable("CLUSTERHEAP_FUZZ_ITERATIONS"), out int n) ? n : 300;

    private static ulong Seed => ulong.TryParse(Environment.GetEnvironmentVariable("CLUSTERHEAP_FUZZ_SEED"), out ulong s) ? s : 20261128;

    public async Task InitializeAsync() =>
        _c = await ClusterConnection.OpenAsync(EmbeddedClusterFixture.Options with { Embedded = 2, ArenaSize = 128L << 20 });

    public async Task DisposeAsync() => await _c.DisposeAsync();

    private static readonly string[] Commands =
        ["alloc", "free", "write", "read", "stats", "spans", "map", "nodes", "verify", "limit", "history", "help", "frobnicate", ""];

    [GeneratedRegex(@"^(0x[0-9a-f]{16})  ", RegexOptions.Multiline)]
    private static partial Regex AllocLine();

    [Fact]
    public async Task HostileShellLinesNeverEndTheSessionAndEachNamesItsError()
    {
        var rng = new Hostile(Seed);
        var output = new StringWriter();
        var session = new ShellSession(_c, output);
        string svgDir = Directory.CreateTempSubdirectory("clusterheap-fuzz-").FullName;
        try
        {
            for (int i = 0; i < Iterations; i++)
            {
                string line = Line(rng, svgDir);
                output.GetStringBuilder().Clear();
                int failuresBefore = session.Failures;
                bool goOn = await session.ExecuteAsync(line);
                string text = output.ToString();
                Assert.True(goOn, $"seed {Seed}, line {i}: '{line}' ended the session");
                string[] errors = [.. text.Split('\n').Where(l => l.StartsWith("error:", StringComparison.Ordinal))];
                bool failed = session.Failures > failuresBefore;
                Assert.True(failed ? errors.Length == 1 : errors.Length == 0, $"seed {Seed}, line {i}: '{line}' gave\n{text}");
                Assert.True(session.Unexpected == 0, $"seed {Seed}, line {i}: '{line}' gave an unforeseen exception:\n{text}");
                if (line.StartsWith("alloc", StringComparison.Ordinal) && AllocLine().Match(text) is { Success: true } m)
                    rng.Live.Add(HeapPointer.TryParse(m.Groups[1].Value, out HeapPointer allocated) ? allocated : throw new FormatException(m.Value));
                if (line.StartsWith("free ", StringComparison.Ordinal) && !failed && HeapPointer.TryParse(line[5..], out HeapPointer p) && rng.Live.Remove(p))
                    rng.Freed.Add(p);
            }
        }
        finally
        {
            Directory.Delete(svgDir, recursive: true);
        }
        await _c.CentralHeap.SetMemoryLimitAsync(long.MaxValue);
        await FreeAllAndVerifyAsync(rng);
    }

    /// <summary>A shell line: a command and 0..5 hostile tokens, or one of the well-formed shapes with a hostile part.</summary>
    private static string Line(Hostile rng, string svgDir)
    {
        string command = rng.Pick(Commands);
        if (rng.Chance(50))
        {
            string ptr = rng.Pointer().ToString();
            return command switch
            {
                "alloc" => $"alloc {rng.Token()} {rng.Pick(["scan", "noscan", "on node0", "on node1", "on " + rng.Token(), ""])}",
                "free" => $"free {ptr}",
                "write" => $"write {ptr} {rng.Token()} at {rng.Token()}",
                "read" => $"read {ptr} {rng.Token()} at {rng.Token()}",
                "spans" => $"spans {rng.Pick(["node0", "node1", rng.Token()])} {rng.Token()}",
                "map" => $"map {rng.Pick(["node0", rng.Token(), ""])} --width {rng.Token()}" +
                    (rng.Chance(20) ? $" --svg \"{Path.Combine(svgDir, "m" + rng.Below(5) + ".svg")}\"" : ""),
                "limit" => $"limit {rng.Pick(["none", "64MiB", "1GiB", rng.Token()])}",
                _ => command + " " + rng.Token(),
            };
        }
        int n = rng.Below(6);
        return string.Join(' ', Enumerable.Range(0, n).Select(_ => rng.Token()).Prepend(command));
    }

    [Fact]
    public async Task HostileGrainCallsReturnOrFailWithANamedError()
    {
        var rng = new Hostile(Seed + 1);
        NodeInfo[] nodes = await _c.NodesAsync();
        for (int i = 0; i < Iterations; i++)
        {
            NodeInfo node = rng.Pick(nodes);
            IMCacheGrain mcache = _c.MCache(node.Name, rng.Below(2));
            IHeapNodeGrain heap = _c.Node(node.Name);
            var kind = (ObjectKind)rng.Pick<int>([0, 1, 2, 3, 99, -1]);
            int op = rng.Below(11);
            string what = $"seed {Seed + 1}, call {i}, op {op} on {node.Name}";
            try
            {
                switch (op)
                {
                    case 0:
                        Keep(rng, await mcache.MallocAsync(rng.SizeValue(), kind));
                        break;
                    case 1:
                        Keep(rng, await mcache.MallocBatchAsync(rng.Chance(80) ? rng.Below(300) : rng.IntValue(), rng.SizeValue(), kind), what);
                        break;
                    case 2:
                        Keep(rng, await mcache.MallocSizesAsync([.. Enumerable.Range(0, rng.Below(40)).Select(_ => rng.SizeValue())], kind), what);
                        break;
                    case 3:
                        HeapPointer f = rng.Pointer();
                        await heap.FreeAsync(f);
                        Forget(rng, f);
                        break;
                    case 4:
                        PointerBatch batch = new([.. Enumerable.Range(0, rng.Below(20)).Select(_ => rng.Pointer())]);
                        HeapError?[] freed = await heap.FreeBatchAsync(batch);
                        Assert.Equal(batch.Pointers.Length, freed.Length);
                        for (int k = 0; k < freed.Length; k++) if (freed[k] is null) Forget(rng, batch.Pointers[k]);
                        break;
                    case 5:
                        _ = await heap.ReadAsync(rng.Pointer(), rng.IntValue());
                        break;
                    case 6:
                        ReadRequest[] reads = [.. Enumerable.Range(0, rng.Below(20)).Select(_ => new ReadRequest(rng.Pointer(), rng.IntValue()))];
                        Assert.Equal(reads.Length, (await heap.ReadBatchAsync(reads)).Length);
                        break;
                    case 7:
                        await heap.WriteAsync(rng.Pointer(), new byte[rng.Chance(90) ? rng.Below(200) : 1 << 20]);
                        break;
                    case 8:
                        WriteRequest[] writes = [.. Enumerable.Range(0, rng.Below(20)).Select(_ => new WriteRequest(rng.Pointer(), new byte[rng.Below(100)]))];
                        Assert.Equal(writes.Length, (await heap.WriteBatchAsync(writes)).Length);
                        break;
                    case 9:
                        _ = await heap.GetSpansAsync(rng.Pick<int>([-1, 0, 5, 67, 133, 134, int.MaxValue, int.MinValue, rng.IntValue()]));
                        break;
                    default:
                        _ = await _c.Router.FreeBatchAsync([.. Enumerable.Range(0, rng.Below(10)).Select(_ => rng.Pointer())]);
                        break;
                }
            }
            catch (ClusterHeapException e)
            {
                Assert.False(string.IsNullOrWhiteSpace(e.Message), what);
                Assert.True(Enum.IsDefined(e.Error.Kind), $"{what}: {e.Error.Kind}");
            }
            catch (Exception e)
            {
                Assert.Fail($"{what}: not a ClusterHeap error: {e.GetType().Name}: {e.Message}");
            }
        }
        await FreeAllAndVerifyAsync(rng);
    }

    private static void Keep(Hostile rng, HeapPointer p) => rng.Live.Add(p);

    private static void Keep(Hostile rng, MallocBatchResult r, string what)
    {
        rng.Live.AddRange(r.Pointers);
        if (r.Error is not null) Assert.False(string.IsNullOrWhiteSpace(r.Error.Message), what);
    }

    private static void Forget(Hostile rng, HeapPointer p)
    {
        if (rng.Live.Remove(p)) rng.Freed.Add(p);
    }

    /// <summary>Frees what the run still holds (a stray free may have taken some: those answer "already freed"), then every verifier must pass.</summary>
    private async Task FreeAllAndVerifyAsync(Hostile rng)
    {
        foreach (HeapPointer[] chunk in rng.Live.Distinct().Chunk(512))
        {
            HeapError?[] errors = await _c.Router.FreeBatchAsync(chunk);
            Assert.All(errors, e => Assert.True(e is null || e.Kind == HeapErrorKind.InvalidPointer, e?.Message));
        }
        // Spans an mcache holds on lease from another node count their unused slots as allocated on the lender
        // until the lease goes back; hand them back so that the count below is the objects really held.
        foreach (NodeInfo n in await _c.NodesAsync())
        {
            for (int p = 0; p < EmbeddedClusterFixture.Options.Procs; p++) await _c.MCache(n.Name, p).ReturnLeasesAsync();
        }
        VerifyResult[] results = await _c.CentralHeap.VerifyAsync();
        Assert.All(results, r => Assert.True(r.Ok, $"{r.Node}: {r.Problem}"));
        ClusterStats stats = await _c.CentralHeap.GetStatsAsync();
        string live = string.Join(", ", stats.Nodes.SelectMany(n => n.BySize.Where(c => c.Mallocs != c.Frees).Select(c => $"{n.Node} class {c.SizeClass} ({c.Size} B): {c.Mallocs - c.Frees}")));
        Assert.True(stats.Sum.HeapObjects == 0, $"{stats.Sum.HeapObjects} objects left after freeing all {rng.Live.Distinct().Count()} held: {live}");
    }
}
