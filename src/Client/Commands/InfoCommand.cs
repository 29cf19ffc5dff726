using System.Globalization;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Render;
using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Client.Commands;

/// <summary>`clusterheap info classes [--json]` and `clusterheap info layout [--arena-size N] [--slot N]`: no cluster needed.</summary>
public static class InfoCommand
{
    public static Command Create(CliContext cli)
    {
        Option<bool> json = new("--json") { Description = "print the classes as one JSON document instead of Go's table" };
        Command classes = CommandTree.New("classes",
            "Go's size-class table (sizeclasses.go's header), as generated here: class, bytes/obj, bytes/span, objects, tail waste, max waste.",
            "clusterheap info classes", "clusterheap info classes --json | jq '.[] | select(.size == 48)'")
            .With(json);
        classes.SetAction(r =>
        {
            if (r.Get(json)) r.InvocationConfiguration.Output.WriteLine(JsonText.Classes());
            else PrintClasses(r.InvocationConfiguration.Output);
            return ExitCodes.Ok;
        });

        Option<long> slot = Symbols.Count("--slot", "the arena slot whose hint address to reserve at", 0, 0, HeapPointer.MaxSlots - 1);
        Command layout = CommandTree.New("layout",
            "mallocinit for real: reserve a node heap and print where the spans array, the bitmap and the arena landed. " +
            "--arena-size is the arena to reserve here (default 512GiB).",
            "clusterheap info layout", "clusterheap info layout --arena-size 8GiB --slot 3")
            .With(slot);
        layout.SetAction(r =>
        {
            Option<long> arena = cli.Connection.ArenaSize;
            PrintLayout(r.InvocationConfiguration.Output, r.GetResult(arena) is null ? HeapLayout.DefaultArenaSize : r.Get(arena), (int)r.Get(slot));
            return ExitCodes.Ok;
        });

        Command info = CommandTree.New("info", "Facts of the node heap, no cluster needed: the size classes, the reservation layout.",
            "clusterheap info classes", "clusterheap info layout --arena-size 8GiB")
            .With(classes, layout);
        info.SetAction(r => CommandTree.ShowHelp(r, ExitCodes.Usage));
        return info;
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
        using var heap = NodeHeap.Create(new HeapOptions { ArenaSize = arenaSize, Slot = slot, BackgroundScavenger = false });
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
