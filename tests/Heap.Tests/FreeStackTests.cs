namespace ClusterHeap.Heap.Tests;

/// <summary>
/// The mcache's free stacks (MCache.FreeStack.cs): the owner's frees of small objects wait on a per-span-class
/// stack and come back with its next Malloc of that class; to everyone else they are freed at once.
/// </summary>
public unsafe class FreeStackTests
{
    private static byte[] Nibbles(NodeHeap heap, nuint p, int words)
    {
        HeapBitmap bm = TestHeap.Bitmap(heap);
        return [.. Enumerable.Range(0, words).Select(i => bm.Get(p + (nuint)(i * 8)))];
    }

    [Fact]
    public void AnOwnersFreeComesBackFromItsNextMallocOfTheClassZeroed()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(64);
        nuint p = c.Malloc(64);
        TestHeap.Fill(p, 64, 0xAB);
        c.Free(p);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(1, s.StackedObjects);
        Assert.Equal(64, s.StackedBytes);
        Assert.Equal(1, s.HeapObjects);
        Assert.Equal(64, s.HeapAlloc);
        Assert.Equal(1, s.Frees);
        TestHeap.AssertVerifies(heap);

        Assert.NotEqual(p, c.Malloc(48));                    // 48 and 64 bytes: different classes
        Assert.Equal(p, c.Malloc(64));
        Assert.True(TestHeap.AllBytesAre(p, 64, 0), "a stacked slot comes back zeroed");
        s = heap.ReadMemStats();
        Assert.Equal(0, s.StackedObjects);
        Assert.Equal(4, s.Mallocs);
        Assert.Equal(3, s.HeapObjects);
        Assert.Equal(64 + 48 + 64, s.HeapAlloc);
        Assert.Equal(64 * 3 + 48, s.TotalAlloc);
        Assert.NotEqual(keep, p);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AStackedObjectIsFreedForEveryThreadAndEveryCall()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        MCache other = heap.CreateCache();
        nuint p = c.Malloc(256, noscan: false);
        c.Free(p);
        string before = TestHeap.Snapshot(heap.ReadMemStats());
        Assert.Equal(PointerError.AlreadyFreed, c.TryFree(p));
        Assert.Equal(PointerError.AlreadyFreed, other.TryFree(p));
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(p));
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFindObject(p, out _));
        Assert.Equal(PointerError.AlreadyFreed, heap.CheckRange(p + 8, 8, out _));
        Assert.Equal(PointerError.Interior, c.TryFree(p + 16));
        Assert.Throws<InvalidPointerException>(() => heap.Read(p, new byte[8]));
        Assert.Equal(before, TestHeap.Snapshot(heap.ReadMemStats()));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AFullStackGivesItsOlderHalfBackAndKeepsTheNewestOnTop()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        int limit = MCache.StackLimitOf(SizeClasses.ClassOf(64) << 1 | 1);
        Assert.Equal(64, limit);
        nuint[] objs = [.. Enumerable.Range(0, limit + 1).Select(_ => c.Malloc(64))];
        for (int i = 0; i < limit; i++) c.Free(objs[i]);
        Assert.Equal(limit, heap.ReadMemStats().StackedObjects);
        c.Free(objs[limit]);                                 // full: the older half goes back to mcentral first
        MemStats s = heap.ReadMemStats();
        Assert.Equal(limit / 2 + 1, s.StackedObjects);
        Assert.Equal(0, s.HeapObjects);
        TestHeap.AssertVerifies(heap);
        // Last in, first out: the newest frees come back first, then the span's own slots.
        for (int i = limit; i >= limit / 2; i--) Assert.Equal(objs[i], c.Malloc(64));
        Assert.Equal(0, heap.ReadMemStats().StackedObjects);
        Assert.DoesNotContain(c.Malloc(64), objs[(limit / 2)..]);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ReleasingTheCacheEmptiesItsStacksAndEverySpanGoesBack()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        var objs = new List<nuint>();
        foreach (int size in new[] { 5, 8, 16, 24, 64, 100, 512, 1024, 4096, 20_000, 32_768 })
        {
            for (int i = 0; i < 150; i++) objs.Add(c.Malloc((nuint)size, noscan: i % 2 == 0));
        }
        foreach (nuint p in objs) c.Free(p);
        MemStats s = heap.ReadMemStats();
        Assert.True(s.StackedObjects > 0);
        Assert.Equal(0, s.HeapObjects);
        Assert.Equal(16, s.HeapAlloc);                         // the open tiny block's slot counts until it is closed
        TestHeap.AssertVerifies(heap);
        heap.ReleaseCache(c);
        s = heap.ReadMemStats();
        Assert.Equal(0, s.StackedObjects);
        Assert.Equal(0, s.HeapInuse);
        Assert.Equal(objs.Count, s.Frees);
        TestHeap.AssertVerifies(heap);
        Assert.Throws<ObjectDisposedException>(() => c.Malloc(64));
    }

    [Fact]
    public void ATinyBlockKilledByItsOwnersFreesIsItsNextTinyBlock()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(8), b = c.Malloc(8);               // one block, full
        nuint next = c.Malloc(4);                              // opens the next block and closes a and b's
        Assert.Equal(a + 8, b);
        Assert.Equal(PointerError.None, c.TryFree(a));
        Assert.Equal(1, heap.ReadMemStats().HeapObjects - 1);
        Assert.Equal(PointerError.None, c.TryFree(b));         // the last live object of a closed block: it dies
        MemStats s = heap.ReadMemStats();
        Assert.Equal(1, s.HeapObjects);
        Assert.Equal(16, s.HeapAlloc);                         // the open block only; the dead one holds nothing
        Assert.Equal(PointerError.TinyAlreadyFreed, c.TryFree(b));
        Assert.Equal(PointerError.TinyAlreadyFreed, heap.TryFree(a));
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFindObject(a, out _));
        TestHeap.AssertVerifies(heap);

        Assert.Equal(next + 8, c.Malloc(8));                   // 4 bytes, then 8 aligned to 8: the open block is full
        Assert.Equal(a, c.Malloc(8));                          // no room left: the new block is the dead one's slot
        Assert.True(TestHeap.AllBytesAre(a, 8, 0));
        TestHeap.AssertVerifies(heap);
        s = heap.ReadMemStats();
        Assert.Equal(3, s.HeapObjects);
        Assert.Equal(5, s.Mallocs);
    }

    [Fact]
    public void FreesThroughAReleasedCacheGoToTheNodeHeapAndAreCounted()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint tiny1 = c.Malloc(8), tiny2 = c.Malloc(8), small = c.Malloc(64), keep = c.Malloc(64);
        heap.ReleaseCache(c);
        Assert.Equal(PointerError.None, c.TryFree(tiny1));
        Assert.Equal(PointerError.None, c.TryFree(small));
        MemStats s = heap.ReadMemStats();
        Assert.Equal(2, s.HeapObjects);
        Assert.Equal(0, s.StackedObjects);
        TestHeap.AssertVerifies(heap);
        Assert.Equal(PointerError.None, c.TryFree(tiny2));
        Assert.Equal(PointerError.None, c.TryFree(keep));
        Assert.Equal(0, heap.ReadMemStats().HeapInuse);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void LargeAndTinyObjectsAreFreedAtOnceAndA16ByteNoscanObjectIsStacked()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint large = c.Malloc(100_000);
        nuint tiny = c.Malloc(5);
        nuint plain16 = c.Malloc(16);                        // noscan 16 bytes: a plain object of the tiny span class
        nuint keep16 = c.Malloc(16);
        c.Free(large);
        c.Free(tiny);
        c.Free(plain16);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(1, s.StackedObjects);
        Assert.Equal(16, s.StackedBytes);
        Assert.Equal(0, s.LargeObjects);
        Assert.Equal(1, s.HeapObjects);
        Assert.Equal(3, s.Frees);
        Assert.Equal(PointerError.NotInUse, c.TryFree(large));
        Assert.Equal(PointerError.TinyAlreadyFreed, c.TryFree(tiny));
        Assert.Equal(PointerError.AlreadyFreed, c.TryFree(plain16));
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(plain16));
        Assert.NotEqual(keep16, plain16);
        TestHeap.AssertVerifies(heap);
        Assert.Equal(plain16, c.Malloc(16));
        Assert.Equal(0, heap.ReadMemStats().StackedObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void TheTinyClassStackHandsDeadBlocksAndFreed16ByteObjectsToTinyBlocksAnd16ByteMallocsAlike()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(8), b = c.Malloc(8);              // one tiny block, full
        nuint plain = c.Malloc(16);
        TestHeap.Fill(plain, 16, 0xCD);
        c.Free(plain);                                       // stacked: an idle slot of the tiny span class
        nuint c1 = c.Malloc(8);
        Assert.Equal(plain, c1);                             // the block is full: the new block opens on that slot
        Assert.True(TestHeap.AllBytesAre(plain, 16, 0), "a reused slot is zeroed as a tiny block");
        nuint c2 = c.Malloc(8);
        Assert.Equal(plain + 8, c2);
        Assert.Equal(PointerError.None, c.TryFree(a));
        Assert.Equal(PointerError.None, c.TryFree(b));       // a and b's block was closed: it dies onto the stack
        MemStats s = heap.ReadMemStats();
        Assert.Equal(1, s.StackedObjects);
        Assert.Equal(2, s.HeapObjects);
        Assert.Equal(16, s.HeapAlloc);                       // the open block; the dead one holds nothing
        TestHeap.AssertVerifies(heap);

        nuint reused = c.Malloc(16);                         // a 16-byte noscan Malloc pops the dead block's slot
        Assert.Equal(a, reused);
        Assert.True(TestHeap.AllBytesAre(reused, 16, 0));
        Assert.Equal(PointerError.Interior, heap.TryFree(b));          // b's offset is inside the plain object now
        s = heap.ReadMemStats();
        Assert.Equal(0, s.StackedObjects);
        Assert.Equal(3, s.HeapObjects);
        Assert.Equal(6, s.Mallocs);
        Assert.Equal(3, s.Frees);
        Assert.Equal(32, s.HeapAlloc);
        TestHeap.AssertVerifies(heap);
        c.Free(reused);
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(reused));
        c.Free(c1);
        c.Free(c2);
        heap.ReleaseCache(c);
        Assert.Equal(0, heap.ReadMemStats().HeapInuse);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void AStackedScanObjectHasItsWordNibblesClearedAndSetAgainOnReuse()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint p = c.MallocTyped(64, [0b101]);
        c.Free(p);
        Assert.Equal(new byte[] { HeapBitmap.Freed, 0, 0, 0, 0, 0, 0, 0 }, Nibbles(heap, p, 8));
        TestHeap.AssertVerifies(heap);
        Assert.Equal(p, c.MallocTyped(64, [0b11]));
        Assert.Equal(new byte[] { HeapBitmap.Nibble(true, WordKind.Pointer), HeapBitmap.Nibble(false, WordKind.Pointer), 0, 0, 0, 0, 0, 0 },
            Nibbles(heap, p, 8));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ABrokenStackEntryIsReportedByTheVerifier()
    {
        // Broken control: a stacked object whose nibble says live again (boundary set) must not pass.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(128);
        nuint p = c.Malloc(128);
        c.Free(p);
        HeapBitmap bm = TestHeap.Bitmap(heap);
        bm.Set(p, HeapBitmap.Nibble(true, WordKind.Scalar));
        VerifyReport r = heap.Verify();
        Assert.False(r.Ok);
        Assert.Contains($"stacked object {TestHeap.Hex(p)}", r.Problem);
        bm.Set(p, HeapBitmap.Freed);
        TestHeap.AssertVerifies(heap);
        Assert.NotEqual(keep, p);
    }

    [Fact]
    public void ATinyClassStackEntryWhoseMaskStillSaysTinyBlockIsReportedByTheVerifier()
    {
        // Broken control: an idle slot on the tiny class's stack whose mask says tiny block could take a tiny free.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint keep = c.Malloc(16);
        nuint p = c.Malloc(16);
        c.Free(p);
        MSpan* s = TestHeap.SpanOf(heap, p);
        ulong* mask = &s->TinyMasks[(int)((p - s->StartAddr) >> 4)];
        ulong old = *mask;
        *mask = old | TinyBlock.IsTiny;
        VerifyReport r = heap.Verify();
        Assert.False(r.Ok);
        Assert.Contains($"stacked slot {TestHeap.Hex(p)}: its mask still says tiny block", r.Problem);
        *mask = old;
        TestHeap.AssertVerifies(heap);
        Assert.NotEqual(keep, p);
    }

    [Fact]
    public void OfTwoThreadsFreeingOneObjectExactlyOneSucceeds()
    {
        // The owner frees through its mcache (lock-free claim, then its free stack) while another thread frees the same
        // object through the node heap (claim under the mcentral lock), both released at the same moment by a spinning
        // hand-off: the bitmap claim lets exactly one through, and the loser is told AlreadyFreed.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        const int Rounds = 20_000;
        nuint shared = 0;
        int go = -1, done = -1;
        var theirs = new PointerError[Rounds];
        var other = new Thread(() =>
        {
            for (int i = 0; i < Rounds; i++)
            {
                if (!SpinUntil(() => Volatile.Read(ref go) == i)) return;
                theirs[i] = heap.TryFree(Volatile.Read(ref shared));
                Volatile.Write(ref done, i);
            }
        });
        other.Start();
        var rng = new Random(7);
        var later = new List<nuint>();
        for (int i = 0; i < Rounds; i++)
        {
            nuint p;
            if (i % 4 == 3)
            {
                // A tiny object whose free kills its block: its neighbour is freed first, and a third object closes the
                // block. The winner disposes of the block (the owner onto its tiny class's free stack, the other under the lock).
                p = c.Malloc(8, noscan: true);
                nuint neighbour = c.Malloc(8, noscan: true);
                later.Add(c.Malloc(8, noscan: true));
                Assert.Equal(PointerError.None, c.TryFree(neighbour));
            }
            else
            {
                p = c.Malloc((nuint)(i % 3 == 0 ? 24 : 64), noscan: i % 2 == 0);
            }
            Volatile.Write(ref shared, p);
            Volatile.Write(ref go, i);
            Thread.SpinWait(rng.Next(0, 40));                // jitter, so either side can be first
            PointerError mine = c.TryFree(p);
            int round = i;
            Assert.True(SpinUntil(() => Volatile.Read(ref done) == round), $"round {i}: the other thread's free did not return");
            Assert.True((mine == PointerError.None) != (theirs[i] == PointerError.None), $"round {i}: owner {mine}, other {theirs[i]}");
            PointerError loser = mine == PointerError.None ? theirs[i] : mine;
            Assert.Equal(i % 4 == 3 ? PointerError.TinyAlreadyFreed : PointerError.AlreadyFreed, loser);
        }
        Assert.True(other.Join(TimeSpan.FromSeconds(30)));
        MemStats s = heap.ReadMemStats();
        Assert.Equal(later.Count, s.HeapObjects);
        TestHeap.AssertVerifies(heap);
        foreach (nuint p in later) c.Free(p);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    /// <summary>Spins (yielding as SpinWait does) until <paramref name="condition"/> holds; false after 30 s.</summary>
    private static bool SpinUntil(Func<bool> condition) => SpinWait.SpinUntil(condition, TimeSpan.FromSeconds(30));

    [Theory]
    [InlineData(8)]
    [InlineData(24)]
    public void NeighboursThatShareBitmapBytesKeepTheirNibblesUnderConcurrentFrees(int size)
    {
        // 8- and 24-byte scan objects share bitmap bytes with their neighbours: the owner marks new objects while
        // another thread claims and clears the ones next to them. A lost nibble update would break the verifier.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        var handOff = new System.Collections.Concurrent.BlockingCollection<nuint>(boundedCapacity: 256);
        var errors = new List<PointerError>();
        var freer = new Thread(() =>
        {
            foreach (nuint p in handOff.GetConsumingEnumerable())
            {
                PointerError e = heap.TryFree(p);
                if (e != PointerError.None) lock (errors) errors.Add(e);
            }
        });
        freer.Start();
        var kept = new List<nuint>();
        for (int i = 0; i < 600_000; i++)
        {
            nuint p = c.Malloc((nuint)size, noscan: false);
            if (i % 5 == 0) kept.Add(p);
            else handOff.Add(p);
        }
        handOff.CompleteAdding();
        Assert.True(freer.Join(TimeSpan.FromSeconds(60)), "the freeing thread did not finish");
        Assert.Empty(errors);
        TestHeap.AssertVerifies(heap);
        foreach (nuint p in kept) c.Free(p);
        heap.ReleaseCache(c);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }
}
