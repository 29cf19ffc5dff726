using System.Globalization;
using System.Text.Json;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// The stress report's fields, each declared once, in the order of the text and of the JSON: its JSON key, where
/// its value comes from (<see cref="StressOutcome"/>: the options, the run's context, the workload, the latencies,
/// the cluster's figures, the verifier), how it reads, and the text line it prints (a label and its text, or no
/// line when another field's line shows it). <see cref="StressReport"/> renders the text and the JSON from this
/// table alone, so a new field is one row here.
/// <para>The JSON keys are a contract (CI, the bench scripts and the README read them): workload, ops, ops_per_sec,
/// p50_us, p99_us, p999_us, refills, leases, peak_committed_bytes, utilization, cookie_failures, lost_objects, errors,
/// passed, interrupted, verify_ok, duration_s, … and the workload's own fields at the top level.</para>
/// </summary>
public static class StressFields
{
    // The rows' text lambdas name rows declared after them, which flow analysis sees as not yet initialized; the
    // lambdas run only when a report renders, after every row is.
#pragma warning disable CS8604
    private static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    // Declared before the rows: each row appends itself as it initializes, and static initializers run in text order.
    private static readonly List<ReportField> Rows = [];

    /// <summary>Every field, in the order of the text and the JSON.</summary>
    public static IReadOnlyList<ReportField> All => Rows;

    public static readonly ReportField<string> Workload = Row("workload", o => o.Options.Workload,
        lines: r => [$"stress {r.Show(Workload)}: {r.Show(Workers)} workers, batch {r.Show(Batch)}, {r.Show(Nodes)} nodes ({r.Show(Cluster)})"]);
    public static readonly ReportField<int> Workers = Row("workers", o => o.Workers);
    public static readonly ReportField<int> Batch = Row("batch", o => o.Options.Batch);
    public static readonly ReportField<int> Nodes = Row("nodes", o => o.Nodes);
    public static readonly ReportField<string> Cluster = Row("cluster", o => o.Context.Connection.Description);
    public static readonly ReportField<string> Shape = Row("shape", o => o.Workload.Shape, label: "shape");

    public static readonly ReportField<long> Ops = Row("ops", o => o.Context.Timed.Ops, label: "ops",
        text: r => $"{r.Show(Ops)} in {r.Show(Seconds)} s ({r.Show(Mallocs)} mallocs, {r.Show(Frees)} frees)");
    /// <summary>The timed phase's own length: a wind-down after it is not in it.</summary>
    public static readonly ReportField<double> Seconds = Row("duration_s", o => o.Context.TimedDuration.TotalSeconds, show: Fixed("0.0"), json: Rounded(3));
    public static readonly ReportField<long> Mallocs = Row("mallocs", o => o.Context.Timed.Mallocs);
    public static readonly ReportField<long> Frees = Row("frees", o => o.Context.Timed.Frees);
    public static readonly ReportField<double> OpsPerSec = Row("ops_per_sec", o => Per(o.Context.Timed.Ops, o.Context.TimedDuration.TotalSeconds),
        show: Fixed("0"), json: Rounded(1), label: "ops/s");
    public static readonly ReportField<double> WindDownSeconds = Row("wind_down_s", o => o.Context.WindDownDuration.TotalSeconds,
        show: Fixed("0.0"), json: Rounded(3), label: "wind-down",
        text: r => $"{r.Show(WindDownSeconds)} s after the timed phase, {r.Show(WindDownOps)} ops in the rounds still out when it ended");
    public static readonly ReportField<long> WindDownOps = Row("wind_down_ops", o => o.Context.WindDown.Ops);

    public static readonly ReportField<double> P50Us = Row("p50_us", o => o.Latency.Percentile(0.50), show: Fixed("0"), json: Rounded(1), label: "latency",
        text: r => $"p50 {r.Show(P50Us)} us   p99 {r.Show(P99Us)} us   p99.9 {r.Show(P999Us)} us   (per call round of up to {r.Show(Batch)} objects, {r.Show(LatencySamples)} rounds)");
    public static readonly ReportField<double> P99Us = Row("p99_us", o => o.Latency.Percentile(0.99), show: Fixed("0"), json: Rounded(1));
    public static readonly ReportField<double> P999Us = Row("p999_us", o => o.Latency.Percentile(0.999), show: Fixed("0"), json: Rounded(1));
    public static readonly ReportField<long> LatencySamples = Row("latency_samples", o => o.Latency.Count);

    public static readonly ReportField<long> Refills = Row("refills", o => o.Cluster.Refills, label: "refills");
    public static readonly ReportField<long> Leases = Row("leases", o => o.Cluster.Leases, label: "leases", text: r => $"{r.Show(Leases)} cross-node");
    /// <summary>Calls the nodes' data path made to the central heap from the timed phase's start to its wind-down's end.</summary>
    public static readonly ReportField<long> CentralCalls = Row("central_calls", o => o.Cluster.CentralCalls, label: "central calls",
        text: r => $"{r.Show(CentralCalls)} from the nodes' data path ({r.Show(CentralCallsPerMillion)} per million mallocs)");
    /// <summary>Over the same span as the calls: the timed phase's mallocs and its wind-down's.</summary>
    public static readonly ReportField<double> CentralCallsPerMillion = Row("central_calls_per_million_mallocs",
        o => Per(o.Cluster.CentralCalls * 1e6, o.Context.Timed.Mallocs + o.Context.WindDown.Mallocs), show: Fixed("0.0"), json: Rounded(2));
    public static readonly ReportField<long> PeakCommittedBytes = Row("peak_committed_bytes", o => o.Cluster.PeakCommittedBytes,
        show: ByteSize.Format, label: "peak committed");
    public static readonly ReportField<double> Utilization = Row("utilization", o => o.Cluster.Utilization, show: v => (v * 100).ToString("0.0", Inv),
        json: Rounded(4), label: "live/committed", text: r => $"{r.Show(Utilization)} % at the end of the timed run");

    public static readonly ReportField<long> CookieChecks = Row("cookie_checks", o => o.Context.CookieChecks, label: "cookies",
        text: r => $"{r.Show(CookieChecks)} checked, {r.Show(CookieFailures)} failures");
    public static readonly ReportField<long> CookieFailures = Row("cookie_failures", o => o.Context.CookieFailures);
    public static readonly ReportField<long> LostObjects = Row("lost_objects", o => o.Context.Lost, label: "lost objects",
        text: r => r.Show(LostObjects) + (r.Get(NodesGone).Count > 0 ? $" (nodes gone: {r.Show(NodesGone)})" : ""));
    public static readonly ReportField<IReadOnlyList<string>> NodesGone = Row<IReadOnlyList<string>>("nodes_gone", o => [.. o.Context.GoneNodes]);
    /// <summary>Objects on live nodes whose free was cut off by a dying silo (freed or not, unknown; never touched again).</summary>
    public static readonly ReportField<long> UnsettledObjects = Row("unsettled_objects", o => o.Context.Unsettled, label: "unsettled",
        when: r => r.Get(UnsettledObjects) > 0, text: r => $"{r.Show(UnsettledObjects)} objects whose free call a dying silo cut off (left alone)");
    public static readonly ReportField<long> OutOfMemory = Row("out_of_memory", o => o.Context.OutOfMemory, label: "out of memory",
        when: r => r.Get(OutOfMemory) > 0, text: r => $"{r.Show(OutOfMemory)} (expected in grow-shrink)");
    /// <summary>The workload's own fields: a line each, and top-level JSON keys.</summary>
    public static readonly ReportField<IReadOnlyDictionary<string, object>> Extra = Row("extra", o => o.Workload.Extra,
        lines: r => r.Get(Extra).Select(e => Labeled(e.Key.Replace('_', ' '), ShowExtra(e.Key, e.Value))),
        json: (w, _, extra) =>
        {
            foreach ((string k, object v) in extra) ReportField.WriteValue(w, k, v);
        });

    public static readonly ReportField<long> Errors = Row("errors", o => o.Context.Errors, label: "errors");
    public static readonly ReportField<IReadOnlyList<string>> ErrorMessages = Row<IReadOnlyList<string>>("error_messages", o => [.. o.Context.ErrorSamples],
        lines: r => r.Get(ErrorMessages).Take(10).Select(e => $"    {e}"));
    /// <summary>The verifier's verdict; the JSON adds verify_ok (false only when it ran and found a broken invariant).</summary>
    public static readonly ReportField<string> Verify = Row("verify", o => o.Verify, label: "verify",
        json: (w, key, v) =>
        {
            w.WriteString(key, v);
            w.WriteBoolean("verify_ok", !VerifyFailed(v));
        });
    /// <summary>Ctrl+C ended the run early; every object it held was still checked and freed before the report.</summary>
    public static readonly ReportField<bool> Interrupted = Row("interrupted", o => o.Interrupted, label: "interrupted", when: r => r.Get(Interrupted),
        text: _ => "by Ctrl+C or SIGTERM: workers stopped early; every object still held was checked and freed");
    /// <summary>
    /// No wrong cookie, no unexpected failure (lost objects of a dead node and grow-shrink's out of memory are
    /// expected) and no broken heap invariant.
    /// </summary>
    public static readonly ReportField<bool> Passed = Row("passed", o => o.Context.CookieFailures == 0 && o.Context.Errors == 0 && !VerifyFailed(o.Verify),
        lines: r => [r.Get(Passed) ? "result: PASS" + (r.Get(Interrupted) ? " (interrupted)" : "") : "result: FAIL"]);

#pragma warning restore CS8604

    /// <summary>True when the verifier ran and found a broken invariant (not when it could not run).</summary>
    public static bool VerifyFailed(string verify) => verify.StartsWith("FAIL", StringComparison.Ordinal);

    /// <summary>
    /// Declares a field. <paramref name="label"/> gives it a line of its own, <c>"  label           text"</c>, whose text
    /// is <paramref name="text"/> or the value; <paramref name="when"/> prints that line only when it holds;
    /// <paramref name="lines"/> replaces it with lines of the field's own making; without either the field has no line
    /// (another field's line shows it).
    /// </summary>
    private static ReportField<T> Row<T>(string key, Func<StressOutcome, T> from, Func<T, string>? show = null,
        Action<Utf8JsonWriter, string, T>? json = null, string? label = null, Func<StressReport, string>? text = null,
        Func<StressReport, bool>? when = null, Func<StressReport, IEnumerable<string>>? lines = null)
        where T : notnull
    {
        int index = Rows.Count;
        if (label is not null)
        {
            lines = r => when is null || when(r) ? [Labeled(label, text is null ? r.Show(Rows[index]) : text(r))] : [];
        }
        var field = new ReportField<T>(key, index, from, show, lines, json);
        Rows.Add(field);
        return field;
    }

    private static string Labeled(string label, string text) => $"  {label,-15} {text}";

    private static Func<double, string> Fixed(string format) => v => v.ToString(format, Inv);

    private static Action<Utf8JsonWriter, string, double> Rounded(int decimals) => (w, key, v) => w.WriteNumber(key, Math.Round(v, decimals));

    private static double Per(double amount, double per) => per <= 0 ? 0 : amount / per;

    private static string ShowExtra(string key, object v) =>
        key.EndsWith("_bytes", StringComparison.Ordinal) && v is long b ? $"{ByteSize.Format(b)} ({b})" : Convert.ToString(v, Inv) ?? "";
}
