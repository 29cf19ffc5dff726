using System.Text.Json;
using ClusterHeap.Client.Stress;
using static ClusterHeap.Client.Stress.StressFields;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// The stress report renders its text and JSON from the one field table (StressFields): every field reaches both,
/// and both read as they did when each was written by hand (CI greps the text and reads the JSON).
/// </summary>
public sealed class StressReportTests
{
    /// <summary>A run's values; <paramref name="trouble"/> adds the figures of a run that lost a node and failed.</summary>
    private static Dictionary<ReportField, object> Sample(bool trouble) => new()
    {
        [StressFields.Workload] = "larson",
        [Workers] = 6,
        [Batch] = 16,
        [Nodes] = 3,
        [Cluster] = "embedded, 3 silos",
        [Shape] = "300 slots per worker",
        [Ops] = 12345678L,
        [Seconds] = 20.0123,
        [Mallocs] = 6172839L,
        [Frees] = 6172839L,
        [OpsPerSec] = 616904.53,
        [WindDownSeconds] = trouble ? 3.912 : 0.004,
        [WindDownOps] = trouble ? 64L : 0L,
        [P50Us] = 812.34,
        [P99Us] = 4321.5,
        [P999Us] = 98765.4,
        [LatencySamples] = 771234L,
        [Refills] = 4321L,
        [Leases] = 17L,
        [CentralCalls] = 99L,
        [CentralCallsPerMillion] = 16.038,
        [PeakCommittedBytes] = 123456789L,
        [Utilization] = 0.87654,
        [CookieChecks] = 6200000L,
        [CookieFailures] = trouble ? 2L : 0L,
        [LostObjects] = trouble ? 1500L : 0L,
        [NodesGone] = trouble ? new[] { "node-2" } : Array.Empty<string>(),
        [UnsettledObjects] = trouble ? 64L : 0L,
        [OutOfMemory] = trouble ? 3L : 0L,
        [Extra] = new Dictionary<string, object> { ["handoffs"] = 42L, ["limit_bytes"] = 1048576L, ["gc_pause_p99_ms"] = 1.25, ["gc_exact"] = "yes (10 objects)" },
        [Errors] = trouble ? 1L : 0L,
        [ErrorMessages] = trouble ? new[] { "malloc on node-1: boom" } : Array.Empty<string>(),
        [Verify] = trouble ? "FAIL node-1: bad" : "ok (3 checks)",
        [Interrupted] = trouble,
        [Passed] = !trouble,
    };

    /// <summary>A report of <paramref name="values"/>; a field they leave out (one added since) holds its type's zero.</summary>
    private static StressReport Report(Dictionary<ReportField, object> values) => new(f => values.TryGetValue(f, out object? v) ? v : Zero(f.ValueType));

    private static object Zero(Type type) =>
        type == typeof(long) ? 0L
        : type == typeof(int) ? 0
        : type == typeof(double) ? 0.0
        : type == typeof(bool) ? false
        : type == typeof(string) ? ""
        : type == typeof(IReadOnlyList<string>) ? Array.Empty<string>()
        : type == typeof(IReadOnlyDictionary<string, object>) ? new Dictionary<string, object>()
        : throw new ArgumentException($"no zero for a {type.Name} field");

    private static string Text(StressReport r)
    {
        var w = new StringWriter();
        r.WriteText(w);
        return w.ToString();
    }

    // The text as StressReport.WriteText printed it before the field table (captured from that code with these
    // values), plus the wind-down line the table added.
    private const string PassedText = """
        stress larson: 6 workers, batch 16, 3 nodes (embedded, 3 silos)
          shape           300 slots per worker
          ops             12345678 in 20.0 s (6172839 mallocs, 6172839 frees)
          ops/s           616905
          wind-down       0.0 s after the timed phase, 0 ops in the rounds still out when it ended
          latency         p50 812 us   p99 4322 us   p99.9 98765 us   (per call round of up to 16 objects, 771234 rounds)
          refills         4321
          leases          17 cross-node
          central calls   99 from the nodes' data path (16.0 per million mallocs)
          peak committed  118 MiB
          live/committed  87.7 % at the end of the timed run
          cookies         6200000 checked, 0 failures
          lost objects    0
          handoffs        42
          limit bytes     1 MiB (1048576)
          gc pause p99 ms 1.25
          gc exact        yes (10 objects)
          errors          0
          verify          ok (3 checks)
        result: PASS

        """;

    private const string TroubleText = """
        stress larson: 6 workers, batch 16, 3 nodes (embedded, 3 silos)
          shape           300 slots per worker
          ops             12345678 in 20.0 s (6172839 mallocs, 6172839 frees)
          ops/s           616905
          wind-down       3.9 s after the timed phase, 64 ops in the rounds still out when it ended
          latency         p50 812 us   p99 4322 us   p99.9 98765 us   (per call round of up to 16 objects, 771234 rounds)
          refills         4321
          leases          17 cross-node
          central calls   99 from the nodes' data path (16.0 per million mallocs)
          peak committed  118 MiB
          live/committed  87.7 % at the end of the timed run
          cookies         6200000 checked, 2 failures
          lost objects    1500 (nodes gone: node-2)
          unsettled       64 objects whose free call a dying silo cut off (left alone)
          out of memory   3 (expected in grow-shrink)
          handoffs        42
          limit bytes     1 MiB (1048576)
          gc pause p99 ms 1.25
          gc exact        yes (10 objects)
          errors          1
            malloc on node-1: boom
          verify          FAIL node-1: bad
          interrupted     by Ctrl+C or SIGTERM: workers stopped early; every object still held was checked and freed
        result: FAIL

        """;

    [Fact]
    public void TheTextReadsLineForLineAsBeforeTheFieldTable()
    {
        Assert.Equal(PassedText.ReplaceLineEndings(), Text(Report(Sample(trouble: false))).ReplaceLineEndings());
        Assert.Equal(TroubleText.ReplaceLineEndings(), Text(Report(Sample(trouble: true))).ReplaceLineEndings());
    }

    [Fact]
    public void TheJsonKeepsEveryKeyAndValueItHadBeforeTheFieldTable()
    {
        using var json = JsonDocument.Parse(Report(Sample(trouble: true)).ToJson());
        JsonElement root = json.RootElement;
        // Key by key as the hand-written JSON had them (captured from that code with these values).
        var numbers = new Dictionary<string, double>
        {
            ["ops"] = 12345678,
            ["ops_per_sec"] = 616904.5,
            ["p50_us"] = 812.3,
            ["p99_us"] = 4321.5,
            ["p999_us"] = 98765.4,
            ["refills"] = 4321,
            ["leases"] = 17,
            ["central_calls"] = 99,
            ["central_calls_per_million_mallocs"] = 16.04,
            ["peak_committed_bytes"] = 123456789,
            ["utilization"] = 0.8765,
            ["cookie_failures"] = 2,
            ["lost_objects"] = 1500,
            ["errors"] = 1,
            ["duration_s"] = 20.012,
            ["workers"] = 6,
            ["batch"] = 16,
            ["nodes"] = 3,
            ["mallocs"] = 6172839,
            ["frees"] = 6172839,
            ["cookie_checks"] = 6200000,
            ["latency_samples"] = 771234,
            ["out_of_memory"] = 3,
            ["unsettled_objects"] = 64,
            ["handoffs"] = 42,
            ["limit_bytes"] = 1048576,
            ["gc_pause_p99_ms"] = 1.25,
        };
        foreach ((string key, double value) in numbers) Assert.Equal(value, root.GetProperty(key).GetDouble());
        Assert.Equal("larson", root.GetProperty("workload").GetString());
        Assert.False(root.GetProperty("passed").GetBoolean());
        Assert.True(root.GetProperty("interrupted").GetBoolean());
        Assert.Equal(["node-2"], root.GetProperty("nodes_gone").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("FAIL node-1: bad", root.GetProperty("verify").GetString());
        Assert.False(root.GetProperty("verify_ok").GetBoolean());
        Assert.Equal(["malloc on node-1: boom"], root.GetProperty("error_messages").EnumerateArray().Select(e => e.GetString()));
        Assert.Equal("300 slots per worker", root.GetProperty("shape").GetString());
        Assert.Equal("yes (10 objects)", root.GetProperty("gc_exact").GetString());
        // The keys the table added.
        Assert.Equal("embedded, 3 silos", root.GetProperty("cluster").GetString());
        Assert.Equal(3.912, root.GetProperty("wind_down_s").GetDouble());
        Assert.Equal(64, root.GetProperty("wind_down_ops").GetInt64());
        string[] keys = [.. root.EnumerateObject().Select(p => p.Name)];
        Assert.Equal(keys.Length, keys.Distinct().Count());
        Assert.Equal(numbers.Count + 12, keys.Length);
    }

    /// <summary>A value that reads differently from <paramref name="value"/> in the text and the JSON.</summary>
    private static object Changed(object value) => value switch
    {
        long l => l * 3 + 7777, // a step byte sizes show (118 MiB + 7777 B still reads 118 MiB)
        int i => i + 7777,
        double d => d + 7777.5,
        string s => s + "-changed",
        bool b => !b,
        IReadOnlyList<string> list => list.Append("changed").ToArray(),
        IReadOnlyDictionary<string, object> extra => new Dictionary<string, object>(extra) { ["changed_key"] = 7777L },
        _ => throw new ArgumentException($"no changed value for a {value.GetType().Name}"),
    };

    [Fact]
    public void EveryFieldReachesBothTheTextAndTheJson()
    {
        var sample = new Dictionary<ReportField, object>(All.ToDictionary(f => f, f => Zero(f.ValueType)));
        foreach ((ReportField f, object v) in Sample(trouble: true)) sample[f] = v;
        StressReport baseline = Report(sample);
        string text = Text(baseline), json = baseline.ToJson();
        Assert.NotEmpty(All);
        foreach (ReportField f in All)
        {
            var values = new Dictionary<ReportField, object>(sample) { [f] = Changed(sample[f]) };
            StressReport changed = Report(values);
            Assert.True(Text(changed) != text, $"field {f.Key}: a new value does not change the text");
            using var before = JsonDocument.Parse(json);
            using var after = JsonDocument.Parse(changed.ToJson());
            if (f == Extra)
            {
                Assert.Equal(7777, after.RootElement.GetProperty("changed_key").GetInt64());
                continue;
            }
            Assert.True(after.RootElement.TryGetProperty(f.Key, out JsonElement now), $"field {f.Key}: no such JSON key");
            Assert.True(now.GetRawText() != before.RootElement.GetProperty(f.Key).GetRawText(), $"field {f.Key}: a new value does not change its JSON");
        }
    }

    [Fact]
    public void AValueOfTheWrongTypeIsRefusedNamingTheField()
    {
        Dictionary<ReportField, object> values = Sample(trouble: false);
        values[Ops] = 12.5;
        ArgumentException e = Assert.Throws<ArgumentException>(() => Report(values));
        Assert.Equal("report field ops holds Int64, not Double", e.Message);
    }
}
