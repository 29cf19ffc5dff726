using System.Globalization;

namespace ClusterHeap.Client.Cli;

/// <summary>Parses and prints byte counts: "64", "8KiB", "512 MiB", "1.5GiB", "32k".</summary>
public static class ByteSize
{
    public static bool TryParse(string text, out long bytes)
    {
        bytes = 0;
        string t = text.Trim().Replace("_", "", StringComparison.Ordinal);
        int i = 0;
        while (i < t.Length && (char.IsDigit(t[i]) || t[i] == '.')) i++;
        if (i == 0) return false;
        if (!double.TryParse(t.AsSpan(0, i), NumberStyles.Float, CultureInfo.InvariantCulture, out double n) || n < 0) return false;
        long unit = t[i..].Trim().ToLowerInvariant() switch
        {
            "" or "b" => 1,
            "k" or "kb" or "kib" => 1L << 10,
            "m" or "mb" or "mib" => 1L << 20,
            "g" or "gb" or "gib" => 1L << 30,
            "t" or "tb" or "tib" => 1L << 40,
            _ => 0,
        };
        if (unit == 0) return false;
        double v = n * unit;
        if (v > long.MaxValue || v != Math.Floor(v)) return false;
        bytes = (long)v;
        return true;
    }

    public static long Parse(string text, string what) =>
        TryParse(text, out long b) ? b : throw new UsageException($"{what}: '{text}' is not a size (examples: 64, 8KiB, 512MiB, 1GiB)");

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
