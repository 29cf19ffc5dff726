using System.Globalization;
using ClusterHeap.Client.Cli;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Commands;

/// <summary>`clusterheap info classes` and `clusterheap info layout [--arena-size N] [--slot N]`.</summary>
public static class InfoCommand
{
    public static int Run(ArgReader args, TextWriter output)
    {
        string? what = args.Positional();
        switch (what)
        {
            case "classes":
                args.Done("info classes");
                PrintClasses(output);
                return 0;
            case "layout":
                long arena = args.Size("arena-size", HeapLayout.DefaultArenaSize);
                int slot = (int)args.Long("slot", 0, min: 0);
                args.Done("info layout");
                PrintLayout(output, arena, slot);
                return 0;
            default:
                throw new UsageException("info: say `info classes` or `info layout [--arena-size 512GiB] [--slot N]`");
        }
    }

    /// <summary>Go's sizeclasses.go header table, from the generated classes.</summary>
    public static void PrintClasses(TextWriter output)
    {
        output.WriteLine("// class  bytes/obj  bytes/span  objects  tail waste  max waste");
        foreach (SizeClassInfo c in SizeClasses.Table)
        {
            output.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"//  {c.Class,5}  {c.Size,9}  {c.SpanBytes,10}  {c.Objects,7}  {c.TailWaste,10}  {c.MaxWastePercent,8:F2}%"));
        }
    }

    /// <summary>Makes a real reservation (mallocinit) and prints where everything landed.</summary>
    public static void PrintLayout(TextWriter output, long arenaSize, int slot)
    {
        using NodeHeap heap = NodeHeap.Create(new HeapOptions { ArenaSize = arenaSize, Slot = slot, BackgroundScavenger = false });
        HeapLayout l = heap.Layout;
        output.WriteLine($"slot {l.Slot}: hint 0x{l.Hint:x12} ({(l.GotHint ? "reserved at the hint" : "hint taken; fell back along the slot loop")})");
        output.WriteLine($"reservation  0x{l.ReservationStart:x12}  {ByteSize.Format(l.ReservationSize),10}  ({l.ReservationSize} bytes, PROT_NONE until the heap grows)");
        Row(output, "spans", l.SpansStart, l.SpansSize, "arena/8 KiB pages × 8 B, rounded to a page");
        Row(output, "bitmap", l.BitmapStart, l.BitmapSize, "arena / 16: 4 bits per 8-byte word");
        Row(output, "arena", l.ArenaStart, l.ArenaSize, $"ends at 0x{l.ArenaEnd:x12}");
    }

    private static void Row(TextWriter output, string name, nuint start, long size, string note) =>
        output.WriteLine($"{name,-12} 0x{start:x12}  {ByteSize.Format(size),10}  ({size} bytes; {note})");
}
