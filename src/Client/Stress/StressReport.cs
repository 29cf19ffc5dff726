using System.Globalization;
using System.Text.Json;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// The outcome of a stress run, as text for people and as JSON (<c>--json FILE</c>) for scripts. The JSON
/// keys are a contract (CI and the README use them): workload, ops, ops_per_sec, p50_us, p99_us, p999_us,
/// refills, leases, peak_committed_bytes, utilization, cookie_failures, lost_objects, errors,
/// plus passed, interrupted, verify_ok, duration_s, workers, batch, nodes, mallocs, frees, cookie_checks, nodes_gone,
/// out_of_memory, unsettled_objects, verify, error_messages and the workload's own fields.
/// </summary>
public sealed record StressReport
{
    public string Workload { get; init; } = "";
    public string Shape { get; init; } = "";
    public string Cluster { get; init; } = "";
    public int Workers { get; init; }
    public int Batch { get; init; }
    public int Nodes { get; init; }
    public double Seconds { get; init; }
    public long Ops { get; init; }
    public long Mallocs { get; init; }
    public long Frees { get; init; }
    public double OpsPerSec => Seconds <= 0 ? 0 : Ops / Seconds;
    public double P50Us { get; init; }
    public double P99Us { get; init; }
    public double P999Us { get; init; }
    public long LatencySamples { get; init; }
    public long Refills { get; init; }
    public long Leases { get; init; }
    /// <summary>Calls the nodes' data path made to the central heap during the timed run (growth, leases, large objects elsewhere).</summary>
    public long CentralCalls { get; init; }
    /// <summary><see cref="CentralCalls"/> per million mallocs.</summary>
    public double CentralCallsPerMillion => Mallocs <= 0 ? 0 : CentralCalls * 1e6 / Mallocs;
    public long PeakCommittedBytes { get; init; }
    public double Utilization { get; init; }
    public long CookieChecks { get; init; }
    public long CookieFailures { get; init; }
    public long LostObjects { get; init; }
    public IReadOnlyList<string> NodesGone { get; init; } = [];
    /// <summary>Objects on live nodes whose free was cut off by a dying silo (freed or not, unknown; never touched again).</summary>
    public long UnsettledObjects { get; init; }
    public long OutOfMemory { get; init; }
    public long Errors { get; init; }
    public IReadOnlyList<string> ErrorMessages { get; init; } = [];
    public string Verify { get; init; } = "";
    public IReadOnlyDictionary<string, object> Extra { get; init; } = new Dictionary<string, object>();

    /// <summary>Ctrl+C ended the run early; every object it held was still checked and freed before this report.</summary>
    public bool Interrupted { get; init; }

    /// <summary>True when the verifier ran and found a broken invariant (not when it could not run).</summary>
    public bool VerifyFailed => Verify.StartsWith("FAIL", StringComparison.Ordinal);

    /// <summary>
    /// No wrong cookie, no unexpected failure (lost objects of a dead node and grow-shrink's out of memory
    /// are expected) and no broken heap invariant.
    /// </summary>
    public bool Passed => CookieFailures == 0 && Errors == 0 && !VerifyFailed;

    public void WriteText(TextWriter o)
    {
        CultureInfo inv = CultureInfo.InvariantCulture;
        o.WriteLine($"stress {Workload}: {Workers} workers, batch {Batch}, {Nodes} nodes ({Cluster})");
        o.WriteLine($"  shape           {Shape}");
        o.WriteLine(string.Create(inv, $"  ops             {Ops} in {Seconds:0.0} s ({Mallocs} mallocs, {Frees} frees)"));
        o.WriteLine(string.Create(inv, $"  ops/s           {OpsPerSec:0}"));
        o.WriteLine(string.Create(inv, $"  latency         p50 {P50Us:0} us   p99 {P99Us:0} us   p99.9 {P999Us:0} us   (per call round of up to {Batch} objects, {LatencySamples} rounds)"));
        o.WriteLine($"  refills         {Refills}");
        o.WriteLine($"  leases          {Leases} cross-node");
        o.WriteLine(string.Create(inv, $"  central calls   {CentralCalls} from the nodes' data path ({CentralCallsPerMillion:0.0} per million mallocs)"));
        o.WriteLine($"  peak committed  {ByteSize.Format(PeakCommittedBytes)}");
        o.WriteLine(string.Create(inv, $"  live/committed  {Utilization * 100:0.0} % at the end of the timed run"));
        o.WriteLine($"  cookies         {CookieChecks} checked, {CookieFailures} failures");
        o.WriteLine($"  lost objects    {LostObjects}{(NodesGone.Count > 0 ? $" (nodes gone: {string.Join(", ", NodesGone)})" : "")}");
        if (UnsettledObjects > 0) o.WriteLine($"  unsettled       {UnsettledObjects} objects whose free call a dying silo cut off (left alone)");
        if (OutOfMemory > 0) o.WriteLine($"  out of memory   {OutOfMemory} (expected in grow-shrink)");
        foreach ((string? k, object? v) in Extra) o.WriteLine($"  {k.Replace('_', ' '),-15} {Format(k, v)}");
        o.WriteLine($"  errors          {Errors}");
        foreach (string e in ErrorMessages.Take(10)) o.WriteLine($"    {e}");
        o.WriteLine($"  verify          {Verify}");
        if (Interrupted) o.WriteLine("  interrupted     by Ctrl+C or SIGTERM: workers stopped early; every object still held was checked and freed");
        o.WriteLine(Passed ? "result: PASS" + (Interrupted ? " (interrupted)" : "") : "result: FAIL");
    }

    private static string Format(string key, object v) =>
        key.EndsWith("_bytes", StringComparison.Ordinal) && v is long b ? $"{ByteSize.Format(b)} ({b})" : Convert.ToString(v, CultureInfo.InvariantCulture) ?? "";

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            w.WriteString("workload", Workload);
            w.WriteNumber("ops", Ops);
            w.WriteNumber("ops_per_sec", Math.Round(OpsPerSec, 1));
            w.WriteNumber("p50_us", Math.Round(P50Us, 1));
            w.WriteNumber("p99_us", Math.Round(P99Us, 1));
            w.WriteNumber("p999_us", Math.Round(P999Us, 1));
            w.WriteNumber("refills", Refills);
            w.WriteNumber("leases", Leases);
            w.WriteNumber("central_calls", CentralCalls);
            w.WriteNumber("central_calls_per_million_mallocs", Math.Round(CentralCallsPerMillion, 2));
            w.WriteNumber("peak_committed_bytes", PeakCommittedBytes);
            w.WriteNumber("utilization", Math.Round(Utilization, 4));
            w.WriteNumber("cookie_failures", CookieFailures);
            w.WriteNumber("lost_objects", LostObjects);
            w.WriteNumber("errors", Errors);
            w.WriteBoolean("passed", Passed);
            w.WriteBoolean("interrupted", Interrupted);
            w.WriteNumber("duration_s", Math.Round(Seconds, 3));
            w.WriteNumber("workers", Workers);
            w.WriteNumber("batch", Batch);
            w.WriteNumber("nodes", Nodes);
            w.WriteNumber("mallocs", Mallocs);
            w.WriteNumber("frees", Frees);
            w.WriteNumber("cookie_checks", CookieChecks);
            w.WriteNumber("latency_samples", LatencySamples);
            w.WriteNumber("out_of_memory", OutOfMemory);
            w.WriteNumber("unsettled_objects", UnsettledObjects);
            w.WriteStartArray("nodes_gone");
            foreach (string n in NodesGone) w.WriteStringValue(n);
            w.WriteEndArray();
            w.WriteString("verify", Verify);
            w.WriteBoolean("verify_ok", !VerifyFailed);
            w.WriteStartArray("error_messages");
            foreach (string e in ErrorMessages) w.WriteStringValue(e);
            w.WriteEndArray();
            w.WriteString("shape", Shape);
            foreach ((string? k, object? v) in Extra)
            {
                switch (v)
                {
                    case long l: w.WriteNumber(k, l); break;
                    case int i: w.WriteNumber(k, i); break;
                    case double d: w.WriteNumber(k, d); break;
                    default: w.WriteString(k, Convert.ToString(v, CultureInfo.InvariantCulture)); break;
                }
            }
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
