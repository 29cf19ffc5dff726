using System.Text.Json;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// The outcome of a stress run, as text for people and as JSON (<c>--json FILE</c>) for scripts. Both are rendered
/// from the field table in <see cref="StressFields"/> (which also says each field's JSON key and where its value
/// comes from); a report only holds one value per field.
/// </summary>
public sealed class StressReport
{
    private readonly object[] _values;

    /// <summary>A report holding <paramref name="valueOf"/>(field) for every field; a value of the wrong type is refused.</summary>
    public StressReport(Func<ReportField, object> valueOf) =>
        _values = [.. StressFields.All.Select(f => f.Check(valueOf(f)))];

    /// <summary>The report of a finished run: each field takes its value from its owner in <paramref name="outcome"/>.</summary>
    public static StressReport From(StressOutcome outcome) => new(f => f.From(outcome));

    public T Get<T>(ReportField<T> field) where T : notnull => (T)_values[field.Index];

    /// <summary>The field's value as the text shows it.</summary>
    public string Show(ReportField field) => field.Show(_values[field.Index]);

    /// <summary>The run's verdict (the exit code follows it).</summary>
    public bool Passed => Get(StressFields.Passed);

    public bool Interrupted => Get(StressFields.Interrupted);

    public void WriteText(TextWriter o)
    {
        foreach (ReportField f in StressFields.All)
        {
            foreach (string line in f.Lines(this)) o.WriteLine(line);
        }
    }

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            w.WriteStartObject();
            foreach (ReportField f in StressFields.All) f.WriteJson(w, _values[f.Index]);
            w.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray()) + "\n";
    }
}
