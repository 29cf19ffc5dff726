using System.Globalization;

namespace ClusterHeap.Silo.Tests;

/// <summary>
/// One scrape of a Prometheus text endpoint, parsed: each sample by metric name and labels. Only what
/// the tests read: <c>name{label="value",…} number</c> lines; comments are skipped.
/// </summary>
public sealed class PrometheusScrape
{
    private readonly List<(string Name, Dictionary<string, string> Labels, double Value)> _samples = [];

    public PrometheusScrape(string text)
    {
        Text = text;
        foreach (string raw in text.Split('\n'))
        {
            string line = raw.Trim();
            if (line.Length == 0 || line[0] == '#')
            {
                continue;
            }

            int brace = line.IndexOf('{', StringComparison.Ordinal);
            int space = line.LastIndexOf(' ');
            string name = brace > 0 ? line[..brace] : line[..line.IndexOf(' ', StringComparison.Ordinal)];
            var labels = new Dictionary<string, string>(StringComparer.Ordinal);
            if (brace > 0)
            {
                string body = line[(brace + 1)..line.LastIndexOf('}')];
                foreach (string pair in body.Split("\",", StringSplitOptions.RemoveEmptyEntries))
                {
                    int eq = pair.IndexOf('=', StringComparison.Ordinal);
                    labels[pair[..eq]] = pair[(eq + 1)..].Trim('"');
                }
            }

            _samples.Add((name, labels, double.Parse(line[(space + 1)..], NumberStyles.Float, CultureInfo.InvariantCulture)));
        }
    }

    /// <summary>The raw text (for failure messages).</summary>
    public string Text { get; }

    /// <summary>Every metric name present.</summary>
    public IEnumerable<string> Names => _samples.Select(s => s.Name).Distinct();

    /// <summary>How many samples of <paramref name="name"/> there are (one per label set).</summary>
    public int Count(string name) => _samples.Count(s => s.Name == name);

    /// <summary>The one sample of <paramref name="name"/> whose labels include <paramref name="labels"/>; fails when there is not exactly one.</summary>
    public long Value(string name, params (string Key, string Value)[] labels) => checked((long)Number(name, labels));

    /// <summary><see cref="Value"/> as the number the endpoint wrote (seconds, ratios, and figures past 2^53).</summary>
    public double Number(string name, params (string Key, string Value)[] labels)
    {
        (string Name, Dictionary<string, string> Labels, double Value)[] matches = _samples.Where(s => s.Name == name && labels.All(l => s.Labels.TryGetValue(l.Key, out string? v) && v == l.Value)).ToArray();
        Assert.True(matches.Length == 1,
            $"expected one sample of {name} with [{string.Join(",", labels.Select(l => $"{l.Key}={l.Value}"))}], found {matches.Length}"
            + (matches.Length == 0 ? $"; names like it: {string.Join(", ", Names.Where(n => n.StartsWith(name[..Math.Min(name.Length, name.LastIndexOf('_') + 1)], StringComparison.Ordinal)))}" : ""));
        return matches[0].Value;
    }
}
