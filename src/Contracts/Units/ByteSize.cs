using System.Globalization;

namespace ClusterHeap.Contracts;

/// <summary>
/// Byte counts as people type and read them, the one parser both programs use (the client's options and
/// shell, the silo's options and environment variables): a number, optionally with a fraction, then an
/// optional unit — <c>64</c>, <c>8KiB</c>, <c>512 MiB</c>, <c>1.5GiB</c>, <c>32k</c>. Units are binary
/// (K = KiB = 1024); the result must be a whole number of bytes.
/// </summary>
public static class ByteSize
{
    /// <summary>What <see cref="TryParse"/> accepts, for error messages.</summary>
    public const string Examples = "64, 8KiB, 512MiB, 1.5GiB";

    public static bool TryParse(string? text, out long bytes)
    {
        bytes = 0;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string t = text.Trim().Replace("_", "", StringComparison.Ordinal);
        int i = 0;
        while (i < t.Length && (char.IsAsciiDigit(t[i]) || t[i] == '.'))
        {
            i++;
        }

        if (i == 0 || !decimal.TryParse(t.AsSpan(0, i), NumberStyles.AllowDecimalPoint, CultureInfo.InvariantCulture, out decimal n))
        {
            return false;
        }

        long unit = t[i..].Trim().ToLowerInvariant() switch
        {
            "" or "b" => 1L,
            "k" or "kb" or "kib" => 1L << 10,
            "m" or "mb" or "mib" => 1L << 20,
            "g" or "gb" or "gib" => 1L << 30,
            "t" or "tb" or "tib" => 1L << 40,
            _ => 0L,
        };
        if (unit == 0 || n > long.MaxValue / unit)
        {
            return false;
        }

        decimal v = n * unit;
        if (v != decimal.Truncate(v))
        {
            return false;
        }

        bytes = (long)v;
        return true;
    }

    /// <summary>The error text for <paramref name="text"/> given to <paramref name="option"/> (named as the user typed it).</summary>
    public static string Error(string option, string text) => $"{option}: '{text}' is not a size in whole bytes (examples: {Examples})";

    /// <summary>"512 B", "8 KiB", "1.5 GiB".</summary>
    public static string Format(long bytes)
    {
        string[] units = ["B", "KiB", "MiB", "GiB", "TiB"];
        double v = bytes;
        int u = 0;
        while (Math.Abs(v) >= 1024 && u < units.Length - 1)
        {
            v /= 1024;
            u++;
        }

        return u == 0 ? $"{bytes} B" : v.ToString(v >= 100 ? "0" : v >= 10 ? "0.#" : "0.##", CultureInfo.InvariantCulture) + " " + units[u];
    }
}
