using System.Text;

namespace ClusterHeap.Client.Shell;

/// <summary>
/// Line input for the interactive shell on a terminal: ←/→, Home/End, Backspace/Delete, ↑/↓ through
/// the history (kept in ~/.clusterheap_history between runs), Ctrl+C to drop the line being typed and
/// start a fresh one (as bash does; it does not leave the shell), Ctrl+D on an empty line to leave.
/// While a line is read Ctrl+C is a key, not a signal; while a command runs it is the process's
/// SIGINT again (see Cli/Interrupt.cs).
/// </summary>
public sealed class LineEditor
{
    private const int MaxHistory = 500;
    private readonly List<string> _history = [];
    private readonly string? _file;

    public LineEditor(string? historyFile)
    {
        _file = historyFile;
        try
        {
            if (_file is not null && File.Exists(_file)) _history.AddRange(File.ReadLines(_file).TakeLast(MaxHistory));
        }
        catch (IOException)
        {
            // History is a convenience: an unreadable file just starts it empty.
        }
    }

    /// <summary>Reads one line; null at end of input.</summary>
    public string? ReadLine(string prompt)
    {
        bool treat = Console.TreatControlCAsInput;
        Console.TreatControlCAsInput = true;
        try
        {
            return Read(prompt);
        }
        finally
        {
            Console.TreatControlCAsInput = treat;
        }
    }

    private string? Read(string prompt)
    {
        Console.Write(prompt);
        var buffer = new StringBuilder();
        int cursor = 0, browse = _history.Count;
        string pending = "";
        while (true)
        {
            ConsoleKeyInfo k = Console.ReadKey(intercept: true);
            switch (k.Key)
            {
                case ConsoleKey.Enter:
                    Console.WriteLine();
                    string line = buffer.ToString();
                    Remember(line);
                    return line;
                case ConsoleKey.Backspace when cursor > 0:
                    buffer.Remove(--cursor, 1);
                    break;
                case ConsoleKey.Delete when cursor < buffer.Length:
                    buffer.Remove(cursor, 1);
                    break;
                case ConsoleKey.LeftArrow when cursor > 0: cursor--; break;
                case ConsoleKey.RightArrow when cursor < buffer.Length: cursor++; break;
                case ConsoleKey.Home: cursor = 0; break;
                case ConsoleKey.End: cursor = buffer.Length; break;
                case ConsoleKey.UpArrow when browse > 0:
                    if (browse == _history.Count) pending = buffer.ToString();
                    Replace(buffer, _history[--browse], ref cursor);
                    break;
                case ConsoleKey.DownArrow when browse < _history.Count:
                    browse++;
                    Replace(buffer, browse == _history.Count ? pending : _history[browse], ref cursor);
                    break;
                case ConsoleKey.C when (k.Modifiers & ConsoleModifiers.Control) != 0:
                    Console.WriteLine("^C");
                    buffer.Clear();
                    cursor = 0;
                    browse = _history.Count;
                    pending = "";
                    break;
                case ConsoleKey.D when (k.Modifiers & ConsoleModifiers.Control) != 0:
                    if (buffer.Length == 0)
                    {
                        Console.WriteLine();
                        return null;
                    }
                    break;
                default:
                    if (k.KeyChar >= ' ' && k.KeyChar != '\u007f') buffer.Insert(cursor++, k.KeyChar);
                    break;
            }
            // Redraw: prompt, text, clear the rest, cursor back into place.
            Console.Write($"\r{prompt}{buffer}\u001b[K");
            int back = buffer.Length - cursor;
            if (back > 0) Console.Write($"\u001b[{back}D");
        }
    }

    private static void Replace(StringBuilder buffer, string text, ref int cursor)
    {
        buffer.Clear().Append(text);
        cursor = buffer.Length;
    }

    private void Remember(string line)
    {
        if (string.IsNullOrWhiteSpace(line) || (_history.Count > 0 && _history[^1] == line)) return;
        _history.Add(line);
        try
        {
            if (_file is not null) File.AppendAllLines(_file, [line]);
        }
        catch (IOException)
        {
            // Not fatal: the session keeps its history in memory.
        }
        catch (UnauthorizedAccessException)
        {
            // Same.
        }
    }
}
