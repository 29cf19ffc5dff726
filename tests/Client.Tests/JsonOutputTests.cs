using System.Text.Json;

namespace ClusterHeap.Client.Tests;

/// <summary>Every --json output parses as JSON and carries the figures its table shows; the tables fit 120 columns.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class JsonOutputTests(EmbeddedClusterFixture fixture)
{
    private async Task<JsonElement> JsonAsync(params string[] args)
    {
        (int exit, string output, string error) = await fixture.RunCliAsync(args);
        Assert.True(exit == 0, error + output);
        using var doc = JsonDocument.Parse(output);
        return doc.RootElement.Clone();
    }

    [Fact]
    public async Task StatsJsonHasTheSumAndEveryNode()
    {
        JsonElement j = await JsonAsync("stats", "--json");
        Assert.Equal(3, j.GetProperty("nodes").GetArrayLength());
        long objects = j.GetProperty("nodes").EnumerateArray().Sum(n => n.GetProperty("heap_objects").GetInt64());
        Assert.Equal(j.GetProperty("sum").GetProperty("heap_objects").GetInt64(), objects);
        Assert.True(j.GetProperty("total_granted").GetInt64() > 0);
        JsonElement node = await JsonAsync("stats", "node1", "--json");
        Assert.Equal("node1", node.GetProperty("node").GetString());
        Assert.True(node.GetProperty("by_size").GetArrayLength() > 0);
    }

    [Fact]
    public async Task NodesJsonListsTheLiveNodes()
    {
        JsonElement j = await JsonAsync("nodes", "--json");
        string[] names = [.. j.GetProperty("nodes").EnumerateArray().Select(n => n.GetProperty("name").GetString()!)];
        Assert.Equal(["node0", "node1", "node2"], names.Order());
        Assert.All(j.GetProperty("nodes").EnumerateArray(), n =>
            Assert.Equal($"0x{Contracts.HeapPointer.HintOf(n.GetProperty("slot").GetInt32()):x12}", n.GetProperty("reserved_at").GetString()));
    }

    [Fact]
    public async Task VerifyJsonSaysOkForEveryNodeAndTheClusterTier()
    {
        JsonElement j = await JsonAsync("verify", "--json");
        Assert.True(j.GetProperty("ok").GetBoolean());
        Assert.Equal(4, j.GetProperty("results").GetArrayLength());
    }

    [Fact]
    public async Task SpansJsonListsSpansOfTheAskedClass()
    {
        (int exit, _, _) = await fixture.RunCliAsync("shell"); // nothing on stdin: a no-op session
        Assert.Equal(0, exit);
        await fixture.Connection.MCache("node2").MallocAsync(48);
        JsonElement j = await JsonAsync("spans", "node2", "5", "--json");
        Assert.Equal("node2", j.GetProperty("node").GetString());
        Assert.True(j.GetProperty("spans").GetArrayLength() > 0);
        Assert.All(j.GetProperty("spans").EnumerateArray(), s => Assert.Equal(5, s.GetProperty("size_class").GetInt32()));
    }

    [Fact]
    public async Task InfoClassesJsonIsGoTable()
    {
        var output = new StringWriter();
        Assert.Equal(0, await Program.RunAsync(["info", "classes", "--json"], output, TextWriter.Null));
        using var doc = JsonDocument.Parse(output.ToString());
        Assert.Equal(67, doc.RootElement.GetArrayLength());
        Assert.Equal(32768, doc.RootElement[66].GetProperty("size").GetInt32());
    }

    [Fact]
    public async Task BenchCallsJsonHasEveryMeasurementWithMeasuredLatencies()
    {
        JsonElement j = await JsonAsync("bench", "calls", "--duration", "200ms", "--json");
        Assert.False(j.GetProperty("interrupted").GetBoolean());
        JsonElement[] m = [.. j.GetProperty("measurements").EnumerateArray()];
        Assert.Equal(5, m.Length);
        Assert.All(m, x => Assert.True(x.GetProperty("rate").GetDouble() > 0 && x.GetProperty("p50_us").GetDouble() > 0));
        // Measured values, not bucket edges of the form 2^k - 1 (3071, 20479): at least one has a fraction.
        Assert.Contains(m, x => x.GetProperty("p50_us").GetDouble() % 1 != 0 || x.GetProperty("p99_us").GetDouble() % 1 != 0);
    }

    [Theory]
    [InlineData("stats")]
    [InlineData("stats", "node0")]
    [InlineData("nodes")]
    [InlineData("spans", "node0")]
    [InlineData("verify")]
    public async Task TablesFitA120ColumnTerminal(params string[] command)
    {
        (int exit, string output, _) = await fixture.RunCliAsync(command);
        Assert.Equal(0, exit);
        Assert.All(output.Split('\n'), line => Assert.True(line.Length <= 120, $"{line.Length} columns: {line}"));
    }
}
