using System.Globalization;

namespace ClusterHeap.Heap.Tests;

/// <summary>The scavenger gives idle free runs back to the OS for real (mincore, VmRSS) and counts them in HeapReleased.</summary>
[Collection(SerialCollection.Name)]   // measures the process's RSS
public unsafe class ScavengerTests
{
    private const long MiB = 1L << 20;
    private const int ObjectSize = 1 << 20;
    private const int Objects = 64;

    /// <summary>64 MiB of large objects, every page written, then all freed. Returns the first object's address.</summary>
    private static nuint FillAndFree(NodeHeap heap, out long freedBytes)
    {
        MCache c = heap.CreateCache();
        var objs = new List<nuint>();
        for (int i = 0; i < Objects; i++)
        {
            nuint p = c.Malloc(ObjectSize);
            TestHeap.Fill(p, ObjectSize, 0x5A);
            objs.Add(p);
        }
        nuint first = objs.Min();
        Assert.Equal(Objects * (long)ObjectSize, (long)(objs.Max() + ObjectSize - first));   // one contiguous range
        Assert.Equal(Objects * (long)ObjectSize, OsMemory.ResidentBytes(first, (nuint)(Objects * (long)ObjectSize)));
        foreach (nuint p in objs) heap.Free(p);
        heap.ReleaseCache(c);
        freedBytes = Objects * (long)ObjectSize;
        return first;
    }

    private static long VmRssBytes()
    {
        string line = File.ReadLines("/proc/self/status").First(l => l.StartsWith("VmRSS:", StringComparison.Ordinal));
        return long.Parse(line.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1], CultureInfo.InvariantCulture) * 1024;
    }

    [Fact]
    public void ForcedScavengeReleasesFreedPagesAndResidentMemoryReallyDrops()
    {
        using NodeHeap heap = TestHeap.Create(arena: 256 * MiB, slot: 20);
        nuint first = FillAndFree(heap, out long freed);
        MemStats before = heap.ReadMemStats();
        Assert.Equal(0, before.HeapReleased);
        Assert.True(before.HeapIdle >= freed);

        long rssBefore = VmRssBytes();
        long released = heap.Scavenge(force: true);
        long rssAfter = VmRssBytes();

        MemStats after = heap.ReadMemStats();
        Assert.True(released >= freed, $"released {released} < freed {freed}");
        Assert.Equal(released, after.HeapReleased - before.HeapReleased);
        Assert.Equal(after.HeapIdle, after.HeapReleased);                    // every free byte is released now
        Assert.Equal(released, after.ScavengedTotal);
        Assert.Equal(0, OsMemory.ResidentBytes(first, (nuint)freed));
        Assert.True(rssBefore - rssAfter >= freed / 2, $"VmRSS fell by only {rssBefore - rssAfter} bytes (freed {freed})");
        TestHeap.AssertVerifies(heap);
        Assert.Equal(0, heap.Scavenge(force: true));                         // nothing left to release
    }

    [Fact]
    public void WithALongDelayAnUnforcedScavengeReleasesNothing()
    {
        using NodeHeap heap = TestHeap.Create(arena: 256 * MiB, slot: 20, scavengeDelay: TimeSpan.FromHours(1));
        nuint first = FillAndFree(heap, out long freed);
        Assert.Equal(0, heap.Scavenge(force: false));
        Assert.Equal(0, heap.ReadMemStats().HeapReleased);
        Assert.Equal(freed, OsMemory.ResidentBytes(first, (nuint)freed));     // still resident
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void TheBackgroundScavengerReleasesRunsIdlePastTheDelay()
    {
        using NodeHeap heap = TestHeap.Create(arena: 256 * MiB, slot: 20, background: true, scavengeDelay: TimeSpan.FromMilliseconds(1));
        nuint first = FillAndFree(heap, out long freed);
        bool released = SpinWait.SpinUntil(() => heap.ReadMemStats().HeapReleased >= freed, TimeSpan.FromSeconds(60));
        Assert.True(released, $"HeapReleased {heap.ReadMemStats().HeapReleased} never reached {freed} within 60 s");
        Assert.Equal(0, OsMemory.ResidentBytes(first, (nuint)freed));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ReleasedMemoryReusedReadsZeroAndCountsAsInUseAgain()
    {
        using NodeHeap heap = TestHeap.Create(arena: 256 * MiB, slot: 20);
        nuint first = FillAndFree(heap, out long freed);
        heap.Scavenge(force: true);
        MemStats scavenged = heap.ReadMemStats();
        Assert.Equal(scavenged.HeapIdle, scavenged.HeapReleased);                  // every idle page is released
        MCache c = heap.CreateCache();
        nuint big = c.Malloc((nuint)(16 * MiB));                                   // a large object over released pages
        Assert.True(big >= first && big < first + (nuint)freed);
        Assert.True(TestHeap.AllBytesAre(big, 16 * MiB, 0));
        var small = new List<nuint>();
        for (int i = 0; i < 2000; i++) small.Add(c.Malloc(1024));          // small spans over released pages
        Assert.All(small, p => Assert.True(TestHeap.AllBytesAre(p, 1024, 0)));
        MemStats s = heap.ReadMemStats();
        // Every page that went back in use came from the released ones or from growth, so HeapReleased fell by
        // exactly the pages newly in use that the heap did not grow for.
        long newlyInUse = s.HeapInuse - scavenged.HeapInuse;
        long grown = s.HeapSys - scavenged.HeapSys;
        Assert.True(newlyInUse >= 16 * MiB + 2000 * 1024, $"HeapInuse grew by only {newlyInUse}");
        Assert.Equal(newlyInUse - grown, scavenged.HeapReleased - s.HeapReleased);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ReleasedAndDirtyRunsCoalesceAndStillComeBackZeroed()
    {
        using NodeHeap heap = TestHeap.Create(arena: 256 * MiB, slot: 20);
        MCache c = heap.CreateCache();
        nuint a = c.Malloc((nuint)(4 * MiB));
        nuint b = c.Malloc((nuint)(4 * MiB));
        nuint guard = c.Malloc(64 << 10);
        TestHeap.Fill(a, 4 * MiB, 1);
        TestHeap.Fill(b, 4 * MiB, 2);
        heap.Free(a);
        heap.Scavenge(force: true);                  // a's run released (zero), then b joins it dirty
        heap.Free(b);
        TestHeap.AssertVerifies(heap);
        nuint x = c.Malloc((nuint)(8 * MiB));
        Assert.Equal(a, x);
        Assert.True(TestHeap.AllBytesAre(x, 8 * MiB, 0));
        heap.Free(guard);
        TestHeap.AssertVerifies(heap);
    }
}
