using System.Text;
using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Shell;

/// <summary>Splits a shell line into words; double quotes group words ("hello world"), backslash escapes inside them.</summary>
public static class Tokenizer
{
    public static List<string> Split(string line)
    {
        var words = new List<string>();
        var current = new StringBuilder();
        bool quoted = false, any = false;
        for (int i = 0; i < line.Length; i++)
        {
            char c = line[i];
            if (quoted)
            {
                if (c == '\\' && i + 1 < line.Length) current.Append(line[++i]);
                else if (c == '"') quoted = false;
                else current.Append(c);
            }
            else if (c == '"')
            {
                quoted = true;
                any = true;
            }
            else if (char.IsWhiteSpace(c))
            {
                if (any) words.Add(current.ToString());
                current.Clear();
                any = false;
            }
            else if (c == '#' && !any)
            {
                break; // a comment runs to the end of the line
            }
            else
            {
                current.Append(c);
                any = true;
            }
        }
        if (quoted) throw new UsageException("unterminated quote");
        if (any) words.Add(current.ToString());
        return words;
    }
}
