using System.Globalization;

namespace ClusterHeap.Contracts;

/// <summary>
/// Durations as people type them, the one parser both programs use: a number with a unit — <c>500ms</c>,
/// <c>30s</c>, <c>2m</c>, <c>1h</c> — or a bare number of seconds (<c>20</c>, <c>0.5</c>), or a TimeSpan
/// (<c>00:05:00</c>). Never negative.
/// </summary>
public static class Duration
{
    /// <summary>What <see cref="TryParse"/> accepts, for error messages.</summary>
    public const string Examples = "500ms, 30s, 2m, 1h, or seconds: 20";

    private static readonly (string Suffix, double Ms)[] Units = [("ms", 1), ("s", 1000), ("m", 60_000), ("h", 3_600_000)];

    public static bool TryParse(string? text, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string t = text.Trim();
        if (Number(t, out double seconds))
        {
            return Make(seconds * 1000, out duration);
        }

        foreach ((string? suffix, double ms) in Units)
        {
            if (t.EndsWith(suffix, StringComparison.OrdinalIgnoreCase) && Number(t[..^suffix.Length].TrimEnd(), out double n))
            {
                return Make(n * ms, out duration);
            }
        }

        return t.Contains(':', StringComparison.Ordinal) && TimeSpan.TryParse(t, CultureInfo.InvariantCulture, out duration) && duration >= TimeSpan.Zero;
    }

    /// <summary>The error text for <paramref name="text"/> given to <paramref name="option"/> (named as the user typed it).</summary>
    public static string Error(string option, string text) => $"{option}: '{text}' is not a duration (examples: {Examples})";

    private static bool Number(string s, out double n) =>
        double.TryParse(s, NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out n) && double.IsFinite(n) && n >= 0;

    private static bool Make(double ms, out TimeSpan duration)
    {
        duration = TimeSpan.Zero;
        if (ms > TimeSpan.MaxValue.TotalMilliseconds)
        {
            return false;
        }

        duration = TimeSpan.FromMilliseconds(ms);
        return true;
    }
}
