using System.Globalization;
using System.Text.Json;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// One field of the stress report, declared once in <see cref="StressFields"/>: its JSON key, where its value comes
/// from (a finished run's <see cref="StressOutcome"/>), how the value reads in the text, the text line it prints (or
/// none, when another field's line shows it) and how it goes into the JSON. <see cref="StressReport"/> renders both
/// forms by walking the fields in order.
/// </summary>
public abstract class ReportField
{
    private protected ReportField(string key, int index)
    {
        Key = key;
        Index = index;
    }

    /// <summary>The JSON key, and the field's name in messages and tests.</summary>
    public string Key { get; }

    /// <summary>Position in <see cref="StressFields.All"/>, the order of the text and the JSON.</summary>
    internal int Index { get; }

    public abstract Type ValueType { get; }

    /// <summary>The value, taken from a finished run.</summary>
    internal abstract object From(StressOutcome outcome);

    /// <summary>The value as the text shows it.</summary>
    internal abstract string Show(object value);

    /// <summary>The text lines this field prints (none when another field's line shows it, or its condition is not met).</summary>
    internal abstract IEnumerable<string> Lines(StressReport report);

    internal abstract void WriteJson(Utf8JsonWriter w, object value);

    /// <summary>One JSON property: numbers as numbers, lists of strings as arrays, anything else as a string.</summary>
    internal static void WriteValue(Utf8JsonWriter w, string key, object value)
    {
        switch (value)
        {
            case long l: w.WriteNumber(key, l); break;
            case int i: w.WriteNumber(key, i); break;
            case double d: w.WriteNumber(key, d); break;
            case bool b: w.WriteBoolean(key, b); break;
            case string s: w.WriteString(key, s); break;
            case IEnumerable<string> list:
                w.WriteStartArray(key);
                foreach (string s in list) w.WriteStringValue(s);
                w.WriteEndArray();
                break;
            default: w.WriteString(key, Convert.ToString(value, CultureInfo.InvariantCulture)); break;
        }
    }

    /// <summary><paramref name="value"/>, or a clear error when it is not of the field's type.</summary>
    internal object Check(object? value) => value is not null && ValueType.IsInstanceOfType(value)
        ? value
        : throw new ArgumentException($"report field {Key} holds {ValueType.Name}, not {value?.GetType().Name ?? "null"}");
}

/// <summary>A report field whose value is a <typeparamref name="T"/>.</summary>
public sealed class ReportField<T> : ReportField where T : notnull
{
    private readonly Func<StressOutcome, T> _from;
    private readonly Func<T, string> _show;
    private readonly Func<StressReport, IEnumerable<string>>? _lines;
    private readonly Action<Utf8JsonWriter, string, T> _json;

    /// <param name="from">Where the value comes from.</param>
    /// <param name="show">The value as text; by default invariant ToString (a list: comma-separated).</param>
    /// <param name="lines">The lines the field prints; null when another field's line shows it.</param>
    /// <param name="json">How the field is written; by default one property <paramref name="key"/> with the value.</param>
    internal ReportField(string key, int index, Func<StressOutcome, T> from, Func<T, string>? show,
        Func<StressReport, IEnumerable<string>>? lines, Action<Utf8JsonWriter, string, T>? json)
        : base(key, index)
    {
        _from = from;
        _show = show ?? DefaultShow;
        _lines = lines;
        _json = json ?? ((w, k, v) => WriteValue(w, k, v));
    }

    public override Type ValueType => typeof(T);

    internal override object From(StressOutcome outcome) => _from(outcome);

    internal override string Show(object value) => _show((T)value);

    internal override IEnumerable<string> Lines(StressReport report) => _lines?.Invoke(report) ?? [];

    internal override void WriteJson(Utf8JsonWriter w, object value) => _json(w, Key, (T)value);

    private static string DefaultShow(T value) => value switch
    {
        string s => s,
        IEnumerable<string> list => string.Join(", ", list),
        _ => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "",
    };
}
