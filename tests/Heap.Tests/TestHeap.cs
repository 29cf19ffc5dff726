using System.Globalization;

namespace ClusterHeap.Heap.Tests;

/// <summary>Small helpers shared by the heap tests: small arenas, the verifier as an assertion, raw memory checks.</summary>
internal static unsafe class TestHeap
{
    public const long MiB = 1L << 20;

    /// <summary>The node the heap tests lend spans to.</summary>
    public static readonly LesseeId Lessee = new("node-lessee", 7);

    /// <summary>A heap with a small arena and no background scavenger (tests that want it turn it on).</summary>
    public static NodeHeap Create(long arena = 64 * MiB, int slot = 10, long growthLimit = long.MaxValue,
        bool background = false, TimeSpan? scavengeDelay = null, bool poison = false) =>
        NodeHeap.Create(new HeapOptions
        {
            ArenaSize = arena,
            Slot = slot,
            GrowthLimit = growthLimit,
            BackgroundScavenger = background,
            ScavengeDelay = scavengeDelay ?? TimeSpan.FromHours(1),
            PoisonOnFree = poison,
        });

    public static void AssertVerifies(NodeHeap heap)
    {
        VerifyReport r = heap.Verify();
        Assert.True(r.Ok, r.ToString());
    }

    public static HeapBitmap Bitmap(NodeHeap heap) => new(heap.Layout.BitmapStart, heap.Layout.ArenaStart);

    /// <summary>The span struct that the spans array names for the page of <paramref name="addr"/>.</summary>
    public static MSpan* SpanOf(NodeHeap heap, nuint addr) =>
        ((MSpan**)heap.Layout.SpansStart)[(addr - heap.Layout.ArenaStart) >> HeapConstants.PageShift];

    public static void Fill(nuint addr, long len, byte value) => new Span<byte>((void*)addr, checked((int)len)).Fill(value);

    public static bool AllBytesAre(nuint addr, long len, byte value) =>
        new ReadOnlySpan<byte>((void*)addr, checked((int)len)).IndexOfAnyExcept(value) < 0;

    /// <summary>Every field of MemStats plus the BySize rows, so two snapshots compare by value.</summary>
    public static string Snapshot(MemStats s) =>
        (s with { BySize = [] }).ToString() + string.Join(",", s.BySize.Select(r => r.ToString()));

    public static string Hex(nuint a) => "0x" + ((ulong)a).ToString("x", CultureInfo.InvariantCulture);

    public static int AlignmentOf(nuint addr) => (int)((ulong)addr & (~(ulong)addr + 1));
}

/// <summary>Tests that measure the whole process (RSS) or hold big mappings run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class SerialCollection
{
    public const string Name = "serial";
}
