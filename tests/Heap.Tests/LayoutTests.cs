using System.Globalization;

namespace ClusterHeap.Heap.Tests;

/// <summary>mallocinit: Go 1.4's reservation sizes, the slot hint, the order of the three regions, PROT_NONE until grown.</summary>
[Collection(SerialCollection.Name)]   // reads /proc/self/maps and owns slot 5
public unsafe class LayoutTests
{
    private const long GiB = 1L << 30;
    private const long MiB = 1L << 20;
    private const int Page = HeapConstants.PageSize;

    [Theory]
    [InlineData(64 * MiB, 64 * MiB, 4 * MiB, 64 * 1024)]
    [InlineData(512 * MiB, 512 * MiB, 32 * MiB, 512 * 1024)]
    [InlineData(1 * GiB + 1, 1 * GiB + Page, (1 * GiB + Page) / 16, 1 * MiB + Page)]   // 131073 pages × 8 B = 1 MiB + 8, rounded to a page
    [InlineData(16 * GiB, 16 * GiB, 1 * GiB, 16 * MiB)]
    [InlineData(512 * GiB, 512 * GiB, 32 * GiB, 512 * MiB)]                            // the default: spans 2^29, bitmap 32 GiB
    public void ReservationSizesFollowTheSeedFormulas(long requested, long arena, long bitmap, long spans)
    {
        (long Arena, long Bitmap, long Spans, long Reservation) sizes = HeapLayout.Sizes(requested);

        Assert.Equal(arena, sizes.Arena);
        Assert.Equal(bitmap, sizes.Bitmap);
        Assert.Equal(spans, sizes.Spans);
        Assert.Equal(spans + bitmap + arena + Page, sizes.Reservation);
        // The formulas themselves: 4 bits per heap word, 8 bytes per arena page rounded to a page.
        Assert.Equal(sizes.Arena / (HeapConstants.PtrSize * 8 / 4), sizes.Bitmap);
        Assert.Equal(0, sizes.Spans % Page);
        Assert.True(sizes.Spans >= sizes.Arena / Page * HeapConstants.PtrSize);
    }

    [Fact]
    public void DefaultHeapReservesSpansBitmapArenaAdjacentAtItsSlotHint()
    {
        using var heap = NodeHeap.Create(new HeapOptions { Slot = 5, BackgroundScavenger = false });
        HeapLayout l = heap.Layout;

        Assert.Equal(5UL << 40 | 0x00c0UL << 32, (ulong)l.Hint);
        Assert.Equal(0x05c000000000UL, (ulong)HeapLayout.HintFor(5));
        Assert.True(l.GotHint, $"slot 5 should be free in the test process; reservation landed at {TestHeap.Hex(l.ReservationStart)}");
        Assert.Equal(5, l.Slot);
        Assert.Equal(l.Hint, l.ReservationStart);
        Assert.Equal(512 * MiB, l.SpansSize);
        Assert.Equal(1L << 29, l.SpansSize);
        Assert.Equal(32 * GiB, l.BitmapSize);
        Assert.Equal(512 * GiB, l.ArenaSize);
        Assert.Equal(l.ReservationStart, l.SpansStart);
        Assert.Equal(l.SpansStart + (nuint)l.SpansSize, l.BitmapStart);
        Assert.Equal(l.BitmapStart + (nuint)l.BitmapSize, l.ArenaStart);
        Assert.Equal(l.ArenaStart + (nuint)l.ArenaSize, l.ArenaEnd);
        Assert.True((long)(l.ArenaEnd - l.ReservationStart) <= l.ReservationSize);
        Assert.Equal(5, HeapLayout.SlotOf(l.ArenaStart));
        Assert.Equal(heap.ArenaStart, l.ArenaStart);
        Assert.Equal(heap.ArenaEnd, l.ArenaEnd);
    }

    [Fact]
    public void EverythingIsProtNoneUntilTheHeapGrowsIntoIt()
    {
        using var heap = NodeHeap.Create(new HeapOptions { Slot = 5, ArenaSize = 256 * MiB, BackgroundScavenger = false });
        HeapLayout l = heap.Layout;
        nuint end = l.ReservationStart + (nuint)l.ReservationSize;

        // Nothing grown yet: the whole reservation is one inaccessible private mapping.
        foreach (nuint probe in new[] { l.SpansStart, l.BitmapStart, l.ArenaStart, l.ArenaEnd - 1 })
        {
            Assert.Equal("---p", ProcMaps.PermsAt(probe));
        }
        Assert.Equal(l.ArenaStart, heap.ArenaUsed);

        MCache c = heap.CreateCache();
        nuint p = c.Malloc(100);
        nuint used = heap.ArenaUsed;
        Assert.True(used > l.ArenaStart && used < l.ArenaEnd);
        Assert.True(p >= l.ArenaStart && p < used);

        // Grown part read-write, the rest of the arena still PROT_NONE; likewise the matching spans/bitmap pages.
        Assert.Equal("rw-p", ProcMaps.PermsAt(l.ArenaStart));
        Assert.Equal("rw-p", ProcMaps.PermsAt(used - 1));
        Assert.Equal("---p", ProcMaps.PermsAt(used));
        Assert.Equal("---p", ProcMaps.PermsAt(l.ArenaEnd - 1));
        Assert.Equal("rw-p", ProcMaps.PermsAt(l.SpansStart));
        Assert.Equal("---p", ProcMaps.PermsAt(l.BitmapStart - 1));
        Assert.Equal("rw-p", ProcMaps.PermsAt(l.BitmapStart));
        Assert.Equal("---p", ProcMaps.PermsAt(l.ArenaStart - 1));
        // Every byte of the reservation is accounted for by exactly one of those two protections.
        foreach ((nuint start, nuint stop, string? perms) in ProcMaps.Read().Where(m => m.End > l.ReservationStart && m.Start < end))
        {
            Assert.Contains(perms, new[] { "---p", "rw-p" });
            Assert.True(start >= l.ReservationStart && stop <= end, $"mapping {TestHeap.Hex(start)}-{TestHeap.Hex(stop)} leaks out of the reservation");
        }
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void DisposeUnmapsTheReservation()
    {
        nuint start;
        using (var heap = NodeHeap.Create(new HeapOptions { Slot = 5, ArenaSize = 64 * MiB, BackgroundScavenger = false }))
        {
            start = heap.Layout.ArenaStart;
            Assert.NotNull(ProcMaps.PermsAt(start));
        }
        Assert.Null(ProcMaps.PermsAt(start));
    }

    [Theory]
    [InlineData(0L, 0, "arena size must be positive")]
    [InlineData(-1L, 0, "arena size must be positive")]
    [InlineData(64 * MiB, 200, "arena slot must be in 0..127, got 200")]
    [InlineData(64 * MiB, -1, "arena slot must be in 0..127, got -1")]
    [InlineData(1L << 40, 0, "1 TiB")]
    [InlineData(1000 * GiB, 0, "1 TiB")]
    public void BadOptionsGiveHeapInitExceptionWithAClearMessage(long arena, int slot, string message)
    {
        HeapInitException e = Assert.Throws<HeapInitException>(() => NodeHeap.Create(new HeapOptions { ArenaSize = arena, Slot = slot, BackgroundScavenger = false }));
        Assert.Contains(message, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void NegativeGrowthLimitIsRefusedAtInit()
    {
        HeapInitException e = Assert.Throws<HeapInitException>(() => NodeHeap.Create(new HeapOptions { ArenaSize = 64 * MiB, GrowthLimit = -1 }));
        Assert.Contains("growth limit", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void ASecondHeapAtATakenSlotFallsBackElsewhereAndSaysSo()
    {
        using var a = NodeHeap.Create(new HeapOptions { Slot = 5, ArenaSize = 64 * MiB, BackgroundScavenger = false });
        using var b = NodeHeap.Create(new HeapOptions { Slot = 5, ArenaSize = 64 * MiB, BackgroundScavenger = false });
        Assert.True(a.Layout.GotHint);
        Assert.False(b.Layout.GotHint);
        Assert.NotEqual(5, b.Layout.Slot);
        Assert.Equal(HeapLayout.HintFor(b.Layout.Slot), b.Layout.ReservationStart);
        Assert.True(b.ArenaEnd <= a.Layout.ReservationStart || b.Layout.ReservationStart >= a.ArenaEnd);
    }
}

/// <summary>/proc/self/maps, parsed.</summary>
internal static class ProcMaps
{
    public static List<(nuint Start, nuint End, string Perms)> Read()
    {
        var rows = new List<(nuint, nuint, string)>();
        foreach (string line in File.ReadLines("/proc/self/maps"))
        {
            string[] parts = line.Split(' ', 3);
            string[] range = parts[0].Split('-');
            rows.Add(((nuint)ulong.Parse(range[0], NumberStyles.HexNumber, CultureInfo.InvariantCulture),
                      (nuint)ulong.Parse(range[1], NumberStyles.HexNumber, CultureInfo.InvariantCulture), parts[1]));
        }
        return rows;
    }

    /// <summary>The protections of the mapping holding <paramref name="addr"/>, or null when nothing is mapped there.</summary>
    public static string? PermsAt(nuint addr)
    {
        foreach ((nuint start, nuint end, string? perms) in Read())
        {
            if (addr >= start && addr < end) return perms;
        }
        return null;
    }
}
