namespace ClusterHeap.Heap.Tests;

/// <summary>The heap bitmap: boundary and kind nibbles set on allocation, cleared (with the freed mark) on free.</summary>
public unsafe class HeapBitmapTests
{
    private const byte B = HeapBitmap.Boundary;
    private static byte N(bool boundary, WordKind kind) => HeapBitmap.Nibble(boundary, kind);

    private static byte[] Nibbles(NodeHeap heap, nuint p, int words)
    {
        HeapBitmap bm = TestHeap.Bitmap(heap);
        byte[] r = new byte[words];
        for (int i = 0; i < words; i++) r[i] = bm.Get(p + (nuint)(i * 8));
        return r;
    }

    [Fact]
    public void NibbleLayoutIsBoundaryFreedKind()
    {
        Assert.Equal(1, HeapBitmap.Boundary);
        Assert.Equal(2, HeapBitmap.Freed);
        Assert.Equal(0b0101, N(true, WordKind.Scalar));
        Assert.Equal(0b1001, N(true, WordKind.Pointer));
        Assert.Equal(0b1000, N(false, WordKind.Pointer));
        Assert.Equal(WordKind.Pointer, HeapBitmap.KindOf(0b1001));
    }

    [Fact]
    public void NoscanObjectsMarkOneScalarBoundaryWordAndTheRestDead()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(64);
        Assert.Equal(new byte[] { N(true, WordKind.Scalar), 0, 0, 0, 0, 0, 0, 0 }, Nibbles(heap, p, 8));
        nuint large = c.Malloc(40000);
        Assert.Equal(N(true, WordKind.Scalar), TestHeap.Bitmap(heap).Get(large));
        Assert.All(Nibbles(heap, large + 8, 100), n => Assert.Equal(0, n));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void UntypedScanObjectsMarkEveryWordPointer()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.Malloc(48, noscan: false);
        byte[] n = Nibbles(heap, p, 7);
        Assert.Equal(N(true, WordKind.Pointer), n[0]);
        for (int i = 1; i < 6; i++) Assert.Equal(N(false, WordKind.Pointer), n[i]);
        Assert.Equal(0, n[6] & B);                  // the next slot is not allocated
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void TypedObjectsMarkPointerScalarAndDeadAfterTheLastPointer()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.MallocTyped(64, [0b0000_0101]);          // words 0 and 2 are pointers
        Assert.Equal(new byte[] { N(true, WordKind.Pointer), N(false, WordKind.Scalar), N(false, WordKind.Pointer), 0, 0, 0, 0, 0 },
            Nibbles(heap, p, 8));
        nuint q = c.MallocTyped(32, [0b1000]);               // only word 3
        Assert.Equal(new byte[] { N(true, WordKind.Scalar), N(false, WordKind.Scalar), N(false, WordKind.Scalar), N(false, WordKind.Pointer) },
            Nibbles(heap, q, 4));
        nuint r = c.MallocTyped(32, [0]);                    // typed, no pointers at all
        Assert.Equal(new byte[] { N(true, WordKind.Scalar), 0, 0, 0 }, Nibbles(heap, r, 4));
        // A mask longer than one word: pointer at word 70 of a 1024-byte object.
        nuint big = c.MallocTyped(1024, [0, 1UL << 6]);
        byte[] bn = Nibbles(heap, big, 128);
        Assert.Equal(N(true, WordKind.Scalar), bn[0]);
        Assert.Equal(N(false, WordKind.Pointer), bn[70]);
        Assert.Equal(N(false, WordKind.Scalar), bn[69]);
        Assert.All(bn[71..], x => Assert.Equal(0, x));
        // Large typed object.
        nuint l = c.MallocTyped(40000, [0b10]);
        Assert.Equal(new byte[] { N(true, WordKind.Scalar), N(false, WordKind.Pointer), 0, 0 }, Nibbles(heap, l, 4));
        TestHeap.AssertVerifies(heap);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FreeClearsTheObjectsNibblesAndLeavesTheFreedMark(bool releaseCacheFirst)
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(64, noscan: false);            // keeps the span alive
        nuint p = c.Malloc(64, noscan: false);
        nuint t = c.MallocTyped(64, [0b101]);
        if (releaseCacheFirst) heap.ReleaseCache(c);
        heap.Free(p);
        heap.Free(t);
        if (!releaseCacheFirst)
        {
            // Freed while cached: the nibbles change at the free (the claim), not when the span is uncached.
            Assert.Equal(new byte[] { HeapBitmap.Freed, 0, 0, 0, 0, 0, 0, 0 }, Nibbles(heap, p, 8));
            TestHeap.AssertVerifies(heap);
            heap.ReleaseCache(c);
        }
        Assert.Equal(new byte[] { HeapBitmap.Freed, 0, 0, 0, 0, 0, 0, 0 }, Nibbles(heap, p, 8));
        Assert.Equal(new byte[] { HeapBitmap.Freed, 0, 0, 0, 0, 0, 0, 0 }, Nibbles(heap, t, 8));
        Assert.Equal(N(true, WordKind.Pointer), TestHeap.Bitmap(heap).Get(keep));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void FreeRunsHaveAnAllZeroBitmap()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint large = c.MallocTyped(100_000, [ulong.MaxValue]);
        var small = new List<nuint>();
        for (int i = 0; i < 600; i++) small.Add(c.Malloc(128, noscan: false));
        heap.Free(large);
        foreach (nuint p in small) heap.Free(p);
        heap.ReleaseCache(c);
        HeapBitmap bm = TestHeap.Bitmap(heap);
        foreach (SpanInfo run in heap.GetSpans().Where(s => !s.InUse))
        {
            var bytes = new ReadOnlySpan<byte>((void*)bm.ByteOf(run.Start), checked((int)(run.Pages * HeapConstants.PageSize / 16)));
            Assert.True(bytes.IndexOfAnyExcept((byte)0) < 0, $"free run {TestHeap.Hex(run.Start)} has bitmap bits");
        }
        Assert.All(heap.GetSpans(), s => Assert.False(s.InUse));
        TestHeap.AssertVerifies(heap);
    }
}
