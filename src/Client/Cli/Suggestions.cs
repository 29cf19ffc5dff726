namespace ClusterHeap.Client.Cli;

/// <summary>
/// "Did you mean": the commands and options of the command where parsing stopped (its own, and the recursive
/// ones above it) closest to a token nobody matched, by edit distance (at most 2, or a third of the word) or
/// because the token is a prefix of one.
/// </summary>
public static class Suggestions
{
    public static string[] For(string token, Command command)
    {
        string word = token.Split('=')[0];
        var names = new List<string>();
        names.AddRange(command.Subcommands.Select(c => c.Name));
        for (Symbol? s = command; s is Command c; s = c.Parents.FirstOrDefault())
        {
            names.AddRange(c.Options.Where(o => ReferenceEquals(c, command) || o.Recursive).SelectMany(o => o.Aliases.Prepend(o.Name)));
        }
        int limit = Math.Max(2, word.Length / 3);
        return [.. names.Distinct()
            .Select(n => (Name: n, Distance: Distance(word, n)))
            .Where(x => x.Distance <= limit || (word.TrimStart('-').Length >= 2 && x.Name.TrimStart('-').StartsWith(word.TrimStart('-'), StringComparison.Ordinal)))
            .OrderBy(x => x.Distance)
            .Take(3)
            .Select(x => x.Name)];
    }

    /// <summary>Levenshtein distance.</summary>
    private static int Distance(string a, string b)
    {
        int[] row = [.. Enumerable.Range(0, b.Length + 1)];
        for (int i = 1; i <= a.Length; i++)
        {
            int diagonal = row[0];
            row[0] = i;
            for (int j = 1; j <= b.Length; j++)
            {
                int above = row[j];
                row[j] = Math.Min(Math.Min(row[j] + 1, row[j - 1] + 1), diagonal + (a[i - 1] == b[j - 1] ? 0 : 1));
                diagonal = above;
            }
        }
        return row[b.Length];
    }
}
