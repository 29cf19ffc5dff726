namespace ClusterHeap.Heap.Tests;

/// <summary>
/// Malloc and Free run on native memory only: a steady stream of them allocates no managed object, so the
/// allocator never wakes the .NET GC. Checked with the runtime's exact per-thread byte counter (not a timing).
/// </summary>
public class ManagedAllocationTests
{
    [Theory]
    [InlineData(8)]          // tiny
    [InlineData(64)]         // small
    [InlineData(1024)]
    [InlineData(32768)]      // largest small class
    [InlineData(100_000)]    // large
    public void MallocAndFreeAllocateNothingOnTheManagedHeap(int size)
    {
        using NodeHeap heap = TestHeap.Create(arena: 256 * TestHeap.MiB);
        MCache c = heap.CreateCache();
        nuint[] ring = new nuint[512];
        for (int i = 0; i < ring.Length; i++) ring[i] = c.Malloc((nuint)size);
        Churn(heap, c, ring, size, 2_000);      // first calls: JIT, refills, span setup

        long before = GC.GetAllocatedBytesForCurrentThread();
        Churn(heap, c, ring, size, 50_000);
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void GrowingTheHeapAllocatesNothingOnTheManagedHeap()
    {
        // Thousands of new spans: mheap grows, span structs and tiny masks come from new fixalloc chunks.
        using NodeHeap heap = TestHeap.Create(arena: 256 * TestHeap.MiB);
        MCache c = heap.CreateCache();
        nuint[] kept = new nuint[200_000];
        c.Free(c.Malloc(8));
        c.Free(c.Malloc(64));

        long before = GC.GetAllocatedBytesForCurrentThread();
        for (int i = 0; i < kept.Length; i++) kept[i] = c.Malloc((nuint)(i % 2 == 0 ? 8 : 8 + (i % 1000)));
        long allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
        Assert.True(heap.ReadMemStats().HeapInuse > 40 * TestHeap.MiB);     // ~50 MiB of new spans
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void TheCounterSeesAManagedAllocationInTheSameLoop()
    {
        // Control: the same measurement notices one managed allocation per round.
        long before = GC.GetAllocatedBytesForCurrentThread();
        object? keep = null;
        for (int i = 0; i < 1000; i++) keep = new byte[16];
        GC.KeepAlive(keep);
        Assert.True(GC.GetAllocatedBytesForCurrentThread() - before >= 1000 * 16);
    }

    private static void Churn(NodeHeap heap, MCache c, nuint[] ring, int size, int ops)
    {
        for (int i = 0; i < ops; i++)
        {
            int slot = i % ring.Length;
            if ((i & 1) == 0) heap.Free(ring[slot]);          // any thread's free, under the locks
            else c.Free(ring[slot]);                          // the owner's free, onto its free stack
            ring[slot] = c.Malloc((nuint)size);
        }
    }
}
