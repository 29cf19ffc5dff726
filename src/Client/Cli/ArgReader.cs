using System.Globalization;

namespace ClusterHeap.Client.Cli;

/// <summary>
/// A small option reader: options are `-name value`, `--name value` or `--name=value`; flags are bare
/// `--name`. Every option is consumed once; leftovers are reported as unknown so typos never pass silently.
/// </summary>
public sealed class ArgReader
{
    private readonly List<string> _args;

    public ArgReader(IEnumerable<string> args) => _args = [.. args];

    public bool IsEmpty => _args.Count == 0;

    /// <summary>The next positional word (not starting with '-'), removed; null when none is left.</summary>
    public string? Positional()
    {
        int i = _args.FindIndex(a => !a.StartsWith('-') || IsNumber(a));
        if (i < 0) return null;
        string v = _args[i];
        _args.RemoveAt(i);
        return v;
    }

    public bool Flag(string name)
    {
        int i = Find(name);
        if (i < 0) return false;
        _args.RemoveAt(i);
        return true;
    }

    public string? Option(string name)
    {
        for (int i = 0; i < _args.Count; i++)
        {
            string a = _args[i];
            string bare = a.TrimStart('-');
            if (a.StartsWith('-') && bare.StartsWith(name + "=", StringComparison.Ordinal))
            {
                _args.RemoveAt(i);
                return bare[(name.Length + 1)..];
            }
            if (a.StartsWith('-') && !IsNumber(a) && bare == name)
            {
                if (i + 1 >= _args.Count) throw new UsageException($"option {a} needs a value");
                string v = _args[i + 1];
                _args.RemoveRange(i, 2);
                return v;
            }
        }
        return null;
    }

    public long Long(string name, long fallback, long min = long.MinValue)
    {
        string? v = Option(name);
        if (v is null) return fallback;
        if (!long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long n))
            throw new UsageException($"-{name}: '{v}' is not a whole number");
        if (n < min) throw new UsageException($"-{name}: {n} is below the minimum {min}");
        return n;
    }

    public long Size(string name, long fallback)
    {
        string? v = Option(name);
        return v is null ? fallback : ByteSize.Parse(v, "-" + name);
    }

    public double Seconds(string name, double fallback)
    {
        string? v = Option(name);
        if (v is null) return fallback;
        string t = v.EndsWith('s') ? v[..^1] : v;
        if (!double.TryParse(t, NumberStyles.Float, CultureInfo.InvariantCulture, out double s) || s <= 0)
            throw new UsageException($"--{name}: '{v}' is not a positive number of seconds");
        return s;
    }

    /// <summary>Fails on anything not consumed.</summary>
    public void Done(string command)
    {
        if (_args.Count > 0) throw new UsageException($"{command}: unknown argument(s): {string.Join(' ', _args)}");
    }

    private int Find(string name) => _args.FindIndex(a => a.StartsWith('-') && !IsNumber(a) && a.TrimStart('-') == name);

    private static bool IsNumber(string a) => double.TryParse(a, NumberStyles.Float, CultureInfo.InvariantCulture, out _);
}
