using System.Globalization;
using System.Text;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Render;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Shell;

/// <summary>
/// The shell's commands over one connection: one line in, plain text out. A failed command prints
/// <c>error: …</c> with the reason and the session goes on; the same executor serves the interactive
/// shell, scripts on standard input and the one-shot <c>stats</c>, <c>nodes</c>, <c>map</c>, <c>verify</c>.
/// </summary>
public sealed partial class ShellSession(ClusterConnection connection, TextWriter output, bool color = false)
{
    public const string Help = """
        commands (sizes take B/KiB/MiB/GiB, pointers are hex as printed by alloc):
          alloc SIZE [scan|noscan] [on NODE]     allocate a zeroed object (noscan by default) through NODE's mcache
          free PTR                               free the object that starts at PTR
          write PTR TEXT|0xHEX [at OFFSET]       write text ("quoted" for spaces) or hex bytes into an object
          read PTR [LEN] [at OFFSET]             hex dump LEN bytes (default 16) of an object
          stats [NODE]                           cluster statistics, or one node's MemStats and BySize
          spans NODE [CLASS]                     the node's spans (of one size class; 0 = large)
          map [NODE] [--svg FILE] [--width N]    the arena picture: spans by size class, shaded by occupancy
          nodes                                  live nodes, slots and generations
          verify                                 run the heap verifier on every node and the cluster tier
          limit [SIZE|none]                      show or set the cluster memory limit
          gc [log|percent N|off|mode M]          run a collection, print its gctrace line; recent lines; GOGC; stw|concurrent
          root PTR / release PTR                 hold / let go of an object as one of this client's roots
          link PTR WORD TARGET|nil               store TARGET in pointer word WORD (0-based) of the object at PTR
          history                                commands typed so far
          help                                   this text
          quit                                   leave (also exit, or end of input)
        """;

    private readonly ClusterConnection _c = connection;
    private readonly TextWriter _out = output;
    private int _nextNode;

    /// <summary>Lines run so far (the shell's history).</summary>
    public List<string> History { get; } = [];

    /// <summary>Commands that failed.</summary>
    public int Failures { get; private set; }

    /// <summary>
    /// Failures the shell did not foresee (an exception of no expected kind): still one <c>error:</c> line and the
    /// session goes on, but each is a bug the fuzz tests look for.
    /// </summary>
    public int Unexpected { get; private set; }

    /// <summary>Runs one line; false when the line asked to quit.</summary>
    public async Task<bool> ExecuteAsync(string line)
    {
        List<string> words;
        try
        {
            words = Tokenizer.Split(line);
        }
        catch (UsageException e)
        {
            Fail(e.Message);
            return true;
        }
        if (words.Count == 0) return true;
        History.Add(line.Trim());
        try
        {
            return await DispatchAsync(words[0].ToLowerInvariant(), words.Skip(1).ToList());
        }
        catch (Exception e) when (e is UsageException or ClusterHeapException)
        {
            Fail(e.Message);
        }
        catch (Exception e) when (e is OrleansException or TimeoutException or IOException or UnauthorizedAccessException)
        {
            Fail($"{e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}");
        }
        catch (Exception e)
        {
            Unexpected++;
            Fail($"unexpected {e.GetType().Name}: {e.Message.Split('\n')[0].Trim()}");
        }
        return true;
    }

    private void Fail(string message)
    {
        Failures++;
        _out.WriteLine($"error: {message}");
    }

    private async Task<bool> DispatchAsync(string command, List<string> a)
    {
        switch (command)
        {
            case "alloc": await AllocAsync(a); break;
            case "free": await FreeAsync(a); break;
            case "write": await WriteAsync(a); break;
            case "read": await ReadAsync(a); break;
            case "stats": await StatsAsync(a); break;
            case "spans": await SpansAsync(a); break;
            case "map": await MapAsync(a); break;
            case "nodes": NoMore(a, "nodes"); await NodesAsync(); break;
            case "verify": NoMore(a, "verify"); await VerifyAsync(); break;
            case "limit": await LimitAsync(a); break;
            case "gc": await GcAsync(a); break;
            case "root": await RootAsync(a, hold: true); break;
            case "release": await RootAsync(a, hold: false); break;
            case "link": await LinkAsync(a); break;
            case "history": for (int i = 0; i < History.Count; i++) _out.WriteLine($"{i + 1,4}  {History[i]}"); break;
            case "help" or "?": _out.Write(Help.TrimEnd() + Environment.NewLine); break;
            case "quit" or "exit": return false;
            default: throw new UsageException($"unknown command '{command}' (type help)");
        }
        return true;
    }

    private async Task NodesAsync()
    {
        NodeInfo[] nodes = await _c.NodesAsync();
        StatsText.Nodes(_out, nodes);
        CentralView view = await _c.CentralHeap.GetViewAsync();
        string host = view.HostSilo is null ? "?" : nodes.FirstOrDefault(n => n.Silo.Equals(view.HostSilo))?.Name ?? view.HostSilo.ToParsableString();
        _out.WriteLine($"central heap on {host}, {view.Leases.Length} active lease{(view.Leases.Length == 1 ? "" : "s")}");
    }

    /// <summary>Runs the verifier and prints it; true when everything is ok.</summary>
    public async Task<bool> VerifyAsync() => StatsText.Verify(_out, await _c.CentralHeap.VerifyAsync());

    private async Task AllocAsync(List<string> a)
    {
        if (a.Count == 0) throw new UsageException("alloc SIZE [scan|noscan] [on NODE]");
        long size = Size(a[0], "alloc");
        ObjectKind kind = ObjectKind.Noscan;
        string? node = null;
        for (int i = 1; i < a.Count; i++)
        {
            switch (a[i].ToLowerInvariant())
            {
                case "scan": kind = ObjectKind.Pointer; break;
                case "noscan": kind = ObjectKind.Noscan; break;
                case "on" when i + 1 < a.Count: node = a[++i]; break;
                default: throw new UsageException($"alloc: unexpected '{a[i]}' (alloc SIZE [scan|noscan] [on NODE])");
            }
        }
        NodeInfo[] nodes = await _c.NodesAsync();
        if (nodes.Length == 0) throw new UsageException("the cluster has no live node");
        NodeInfo target = node is null ? nodes[_nextNode++ % nodes.Length] : await FindNodeAsync(node);
        HeapPointer p = await _c.MCache(target.Name).MallocAsync(size, kind);
        _out.WriteLine($"{p}  {ByteSize.Format(size)} {(kind == ObjectKind.Noscan ? "noscan" : "scan")} on {NodeOf(p, nodes)} ({Slots(size, kind)})");
    }

    private static string NodeOf(HeapPointer p, NodeInfo[] nodes) => nodes.FirstOrDefault(n => n.Slot == p.Slot)?.Name ?? $"slot {p.Slot}";

    private static string Slots(long size, ObjectKind kind)
    {
        if (size == 0) return "the zero-size base";
        if (kind == ObjectKind.Noscan && size < 16) return "tiny block, class 2";
        if (size > SizeClasses.MaxSmallSize) return $"large, a span of {(size + HeapConstants.PageSize - 1) / HeapConstants.PageSize} pages";
        int c = SizeClasses.ClassOf((nuint)size);
        return $"class {c}, {SizeClasses.SizeOf(c)} B slots";
    }

    private async Task FreeAsync(List<string> a)
    {
        if (a.Count != 1) throw new UsageException("free PTR");
        HeapPointer p = Pointer(a[0]);
        await _c.Router.FreeAsync(p);
        _out.WriteLine($"freed {p}");
    }

    private async Task WriteAsync(List<string> a)
    {
        if (a.Count < 2) throw new UsageException("write PTR TEXT|0xHEX [at OFFSET]");
        HeapPointer p = Pointer(a[0]);
        long offset = 0;
        int end = a.Count;
        if (a.Count >= 4 && a[^2].Equals("at", StringComparison.OrdinalIgnoreCase))
        {
            offset = Size(a[^1], "write … at");
            end -= 2;
        }
        string text = string.Join(' ', a.Skip(1).Take(end - 1));
        byte[] data = text.StartsWith("0x", StringComparison.OrdinalIgnoreCase) ? Hex(text[2..]) : Encoding.UTF8.GetBytes(text);
        if (data.Length == 0) throw new UsageException("write: nothing to write");
        await _c.Router.WriteAsync(At(p, offset, "write"), data);
        _out.WriteLine($"wrote {data.Length} byte{(data.Length == 1 ? "" : "s")} at {p} + {offset}");
    }

    private async Task ReadAsync(List<string> a)
    {
        if (a.Count < 1) throw new UsageException("read PTR [LEN] [at OFFSET]");
        HeapPointer p = Pointer(a[0]);
        long length = 16, offset = 0;
        for (int i = 1; i < a.Count; i++)
        {
            if (a[i].Equals("at", StringComparison.OrdinalIgnoreCase) && i + 1 < a.Count) offset = Size(a[++i], "read … at");
            else if (i == 1) length = Size(a[i], "read LEN");
            else throw new UsageException($"read: unexpected '{a[i]}' (read PTR [LEN] [at OFFSET])");
        }
        if (length is < 1 or > 1 << 20) throw new UsageException("read: LEN must be from 1 byte to 1 MiB");
        byte[] data = await _c.Router.ReadAsync(At(p, offset, "read"), (int)length);
        HexDump(_out, data, offset);
    }

    public static void HexDump(TextWriter output, byte[] data, long offset)
    {
        for (int i = 0; i < data.Length; i += 16)
        {
            Span<byte> row = data.AsSpan(i, Math.Min(16, data.Length - i));
            var hex = new StringBuilder();
            var text = new StringBuilder();
            for (int j = 0; j < 16; j++)
            {
                hex.Append(j < row.Length ? row[j].ToString("x2", CultureInfo.InvariantCulture) + " " : "   ");
                if (j == 7) hex.Append(' ');
                if (j < row.Length) text.Append(row[j] is >= 0x20 and < 0x7f ? (char)row[j] : '.');
            }
            output.WriteLine($"+{offset + i:x4}  {hex}|{text}|");
        }
    }

    private async Task StatsAsync(List<string> a)
    {
        if (a.Count > 1) throw new UsageException("stats [NODE]");
        if (a.Count == 0)
        {
            StatsText.Cluster(_out, await _c.CentralHeap.GetStatsAsync());
            return;
        }
        NodeInfo n = await FindNodeAsync(a[0]);
        StatsText.Node(_out, await _c.Node(n.Name).GetStatsAsync());
    }

    private async Task SpansAsync(List<string> a)
    {
        if (a.Count is < 1 or > 2) throw new UsageException("spans NODE [CLASS]");
        NodeInfo n = await FindNodeAsync(a[0]);
        int sizeClass = -1;
        if (a.Count == 2 && (!int.TryParse(a[1], out sizeClass) || sizeClass < 0 || sizeClass >= SizeClasses.NumClasses))
            throw new UsageException($"spans: '{a[1]}' is not a size class (0 = large, 1..{SizeClasses.NumClasses - 1})");
        StatsText.Spans(_out, await _c.Node(n.Name).GetSpansAsync(sizeClass));
    }

    private async Task MapAsync(List<string> words)
    {
        string? svg = null, node = null;
        int width = TerminalMap.DefaultWidth;
        for (int i = 0; i < words.Count; i++)
        {
            string w = words[i];
            if (w is "--svg" or "--width" && i + 1 >= words.Count) throw new UsageException($"map: {w} needs a value");
            if (w == "--svg") svg = words[++i];
            else if (w == "--width") width = int.TryParse(words[++i], out int n) && n is >= 16 and <= 1024 ? n : throw new UsageException($"map --width: '{words[i]}' is not a width from 16 to 1024");
            else if (node is null && !w.StartsWith('-')) node = w;
            else throw new UsageException($"map: unexpected '{w}' (map [NODE] [--svg FILE] [--width N])");
        }
        NodeInfo[] nodes = node is null ? await _c.NodesAsync() : [await FindNodeAsync(node)];
        HeapMap[] maps = await Task.WhenAll(nodes.Select(n => _c.Node(n.Name).GetHeapMapAsync()));
        if (svg is not null)
        {
            File.WriteAllText(svg, SvgMap.Render(maps));
            _out.WriteLine($"wrote {svg}: {maps.Length} node(s), {maps.Sum(m => m.Rows.Length)} spans");
            return;
        }
        TerminalMap.Write(_out, maps, color, width);
    }

    private async Task LimitAsync(List<string> a)
    {
        if (a.Count > 1) throw new UsageException("limit [SIZE|none]");
        if (a.Count == 1)
        {
            long limit = a[0] is "none" or "off" ? long.MaxValue : Size(a[0], "limit");
            await _c.CentralHeap.SetMemoryLimitAsync(limit);
        }
        ClusterStats s = await _c.CentralHeap.GetStatsAsync();
        _out.WriteLine($"memory limit {(s.MemoryLimit == long.MaxValue ? "none" : ByteSize.Format(s.MemoryLimit))}, granted {ByteSize.Format(s.TotalGranted)}");
    }

    public async Task<NodeInfo> FindNodeAsync(string name)
    {
        NodeInfo[] nodes = await _c.NodesAsync();
        return nodes.FirstOrDefault(n => n.Name.Equals(name, StringComparison.OrdinalIgnoreCase))
            ?? throw new UsageException($"unknown node '{name}' (live nodes: {string.Join(", ", nodes.Select(n => n.Name).Order(StringComparer.Ordinal))})");
    }

    /// <summary>A size or count typed in the shell; the error names what it was for.</summary>
    private static long Size(string text, string what) =>
        ByteSize.TryParse(text, out long bytes) ? bytes : throw new UsageException(ByteSize.Error(what, text));

    /// <summary>PTR + OFFSET, refused when it leaves the 48-bit address space (no object reaches that far).</summary>
    private static HeapPointer At(HeapPointer p, long offset, string command) =>
        (ulong)offset <= HeapPointer.AddressMask - p.Address
            ? p.Offset(offset)
            : throw new UsageException($"{command}: offset {offset} from {p} leaves the 48-bit address space (no object is that large)");

    private static HeapPointer Pointer(string text) =>
        HeapPointer.TryParse(text, out HeapPointer p) && !p.IsNull ? p : throw new UsageException($"'{text}' is not a pointer (hex, as alloc prints it)");

    private static byte[] Hex(string hex)
    {
        hex = hex.Replace("_", "", StringComparison.Ordinal).Replace(" ", "", StringComparison.Ordinal);
        try
        {
            return hex.Length % 2 == 0 ? Convert.FromHexString(hex) : throw new FormatException();
        }
        catch (FormatException)
        {
            throw new UsageException($"'0x{hex}' is not an even number of hex digits");
        }
    }

    private static void NoMore(List<string> a, string command)
    {
        if (a.Count > 0) throw new UsageException($"{command} takes no arguments");
    }
}
