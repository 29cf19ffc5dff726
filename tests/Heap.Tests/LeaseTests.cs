namespace ClusterHeap.Heap.Tests;

/// <summary>Leases, lender side: every free slot of the lent span is allocated for the lessee at once.</summary>
public unsafe class LeaseTests
{
    private static IEnumerable<nuint> Slots(SpanLease l)
    {
        for (int i = 0; i < l.Objects; i++)
        {
            if ((l.FreeSlots[i >> 6] & (1UL << i)) != 0) yield return l.SpanBase + (nuint)(i * l.ElemSize);
        }
    }

    [Fact]
    public void LendSpanMarksEveryFreeSlotAllocatedAndCountsThem()
    {
        using NodeHeap heap = TestHeap.Create();
        int cls = SizeClasses.ClassOf(128);
        int spc = cls << 1 | 1;
        SpanLease? lease = heap.LendSpan(spc, TestHeap.Lessee);
        Assert.NotNull(lease);
        Assert.Equal(spc, lease.SpanClass);
        Assert.Equal(128, lease.ElemSize);
        Assert.Equal(SizeClasses.ObjectsOf(cls), lease.Objects);
        Assert.Equal(lease.Objects, Slots(lease).Count());
        MemStats s = heap.ReadMemStats();
        Assert.Equal(lease.Objects, s.HeapObjects);
        Assert.Equal(lease.Objects * 128L, s.HeapAlloc);
        Assert.Equal(1, s.LeasesLent);
        Assert.Equal(1, s.ActiveLeases);
        Assert.Equal([lease.LeaseId], heap.ActiveLeases);
        Assert.Equal("lease", heap.GetSpans(cls).Single().Cache);
        TestHeap.AssertVerifies(heap);

        // The lessee's addresses are valid at once: write, read, free.
        byte[] data = [9, 8, 7, 6];
        foreach (nuint p in Slots(lease))
        {
            Assert.True(TestHeap.AllBytesAre(p, 128, 0));
            heap.Write(p + 124, data);
            byte[] back = new byte[4];
            heap.Read(p + 124, back);
            Assert.Equal(data, back);
        }
        nuint[] handedOut = Slots(lease).Take(10).ToArray();
        foreach (nuint p in handedOut) heap.Free(p);
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(handedOut[0]));
        Assert.Equal(lease.Objects - 10, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ReturnLeaseFreesTheSlotsTheLesseeNeverHandedOut()
    {
        using NodeHeap heap = TestHeap.Create();
        int spc = SizeClasses.ClassOf(64) << 1;
        SpanLease lease = heap.LendSpan(spc, TestHeap.Lessee)!;
        nuint[] slots = Slots(lease).ToArray();
        // The lessee handed out the first 5, one of which was freed already; the rest come back unused.
        ulong[] unused = (ulong[])lease.FreeSlots.Clone();
        for (int i = 0; i < 5; i++) unused[i >> 6] &= ~(1UL << i);
        heap.Free(slots[0]);
        heap.ReturnLease(lease.LeaseId, unused);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(4, s.HeapObjects);
        Assert.Equal(4 * 64L, s.HeapAlloc);
        Assert.Equal(1, s.LeasesReturned);
        Assert.Equal(0, s.ActiveLeases);
        Assert.Empty(heap.ActiveLeases);
        Assert.Equal("central", heap.GetSpans(SizeClasses.ClassOf(64)).Single().Cache);
        for (int i = 1; i < 5; i++) Assert.Equal(PointerError.None, heap.TryFindObject(slots[i], out _));
        Assert.Equal(PointerError.AlreadyFreed, heap.TryFree(slots[7]));
        TestHeap.AssertVerifies(heap);
        for (int i = 1; i < 5; i++) heap.Free(slots[i]);
        Assert.Empty(heap.GetSpans(SizeClasses.ClassOf(64)));      // the span went back to mheap
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ReclaimLeaseUncachesTheSpanAndKeepsEverySlotAllocated()
    {
        using NodeHeap heap = TestHeap.Create();
        int cls = SizeClasses.ClassOf(256);
        SpanLease lease = heap.LendSpan(cls << 1 | 1, TestHeap.Lessee)!;
        nuint first = Slots(lease).First();
        heap.Free(first);
        heap.ReclaimLease(lease.LeaseId);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(lease.Objects - 1, s.HeapObjects);
        Assert.Equal(1, s.LeasesReclaimed);
        Assert.Empty(heap.ActiveLeases);
        Assert.Equal("central", heap.GetSpans(cls).Single().Cache);
        TestHeap.AssertVerifies(heap);
        // The freed slot is reused by a local cache, zeroed. A refill prefers a whole free span over a nearly-full
        // partial one while mheap has free pages, so first use those pages up and stop the heap from growing.
        MCache c = heap.CreateCache();
        heap.GrowthLimit = heap.ReadMemStats().HeapSys;
        long idle = heap.ReadMemStats().HeapIdle;
        if (idle > 0) c.Malloc((nuint)idle);
        TestHeap.Fill(Slots(lease).Last(), 256, 0xCC);
        nuint p = c.Malloc(256);
        Assert.Equal(first, p);
        Assert.True(TestHeap.AllBytesAre(p, 256, 0));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void LendingAPartialSpanLendsOnlyItsFreeSlots()
    {
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(512), b = c.Malloc(512);
        heap.ReleaseCache(c);                                      // the span goes to mcentral's partial list
        SpanLease lease = heap.LendSpan(SizeClasses.ClassOf(512) << 1 | 1, TestHeap.Lessee)!;
        Assert.Equal(a & ~(nuint)HeapConstants.PageMask, lease.SpanBase & ~(nuint)HeapConstants.PageMask);
        Assert.DoesNotContain(a, Slots(lease));
        Assert.DoesNotContain(b, Slots(lease));
        Assert.Equal(lease.Objects - 2, Slots(lease).Count());
        Assert.Equal(lease.Objects, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
        heap.ReturnLease(lease.LeaseId, lease.FreeSlots);
        Assert.Equal(2, heap.ReadMemStats().HeapObjects);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void ReturnLeaseFreesOnlySlotsThatLeaseWasGiven()
    {
        // A lessee that names slots it was never lent (here: the two live objects of a partial span) frees nothing of them.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        nuint a = c.Malloc(512), b = c.Malloc(512);
        heap.ReleaseCache(c);
        SpanLease lease = heap.LendSpan(SizeClasses.ClassOf(512) << 1 | 1, TestHeap.Lessee)!;
        heap.ReturnLease(lease.LeaseId, Enumerable.Repeat(ulong.MaxValue, lease.FreeSlots.Length).ToArray());
        Assert.Equal(2, heap.ReadMemStats().HeapObjects);
        Assert.Equal(PointerError.None, heap.TryFindObject(a, out _));
        Assert.Equal(PointerError.None, heap.TryFindObject(b, out _));
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void LendingAnEightByteNoscanSpanNeverUndoesARacingFree()
    {
        // Span class 3 (8-byte noscan objects) exists only for lessees; two of its objects share each bitmap byte. A
        // second lease of a partial span marks its free slots while another thread frees the live ones next to them:
        // a plain byte write there would put a freed object's boundary bit back (found in review).
        using NodeHeap heap = TestHeap.Create(arena: 256 * TestHeap.MiB);
        const int spc = 1 << 1 | 1;
        for (int round = 0; round < 1500; round++)
        {
            SpanLease first = heap.LendSpan(spc, TestHeap.Lessee)!;
            ulong[] unused = new ulong[first.FreeSlots.Length];
            var handedOut = new List<nuint>();
            foreach (nuint slot in Slots(first))
            {
                int i = (int)((slot - first.SpanBase) / 8);
                if ((i & 1) == 0) handedOut.Add(slot);
                else unused[i >> 6] |= 1UL << i;
            }
            heap.ReturnLease(first.LeaseId, unused);                 // partial now: the even slots are live
            using var start = new Barrier(2);
            SpanLease? second = null;
            var lender = new Thread(() =>
            {
                start.SignalAndWait();
                second = heap.LendSpan(spc, TestHeap.Lessee);
            });
            lender.Start();
            start.SignalAndWait();
            foreach (nuint p in handedOut) Assert.Equal(PointerError.None, heap.TryFree(p));
            Assert.True(lender.Join(TimeSpan.FromSeconds(30)));
            Assert.Equal(first.SpanBase, second!.SpanBase);
            VerifyReport r = heap.Verify();
            Assert.True(r.Ok, $"round {round}: {r}");
            heap.ReturnLease(second.LeaseId, second.FreeSlots);
        }
        TestHeap.AssertVerifies(heap);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void UnknownLeaseIdsAndBadSpanClassesAreRefused()
    {
        using NodeHeap heap = TestHeap.Create();
        Assert.Throws<ArgumentException>(() => heap.ReturnLease(12345, []));
        Assert.Throws<ArgumentException>(() => heap.ReclaimLease(12345));
        SpanLease lease = heap.LendSpan(10, TestHeap.Lessee)!;
        heap.ReturnLease(lease.LeaseId, lease.FreeSlots);
        ArgumentException e = Assert.Throws<ArgumentException>(() => heap.ReturnLease(lease.LeaseId, lease.FreeSlots));
        Assert.Contains("not active", e.Message, StringComparison.Ordinal);
        Assert.Throws<ArgumentOutOfRangeException>(() => heap.LendSpan(0, TestHeap.Lessee));
        Assert.Throws<ArgumentOutOfRangeException>(() => heap.LendSpan(1, TestHeap.Lessee));
        Assert.Throws<ArgumentOutOfRangeException>(() => heap.LendSpan(SizeClasses.NumSpanClasses, TestHeap.Lessee));
        TestHeap.AssertVerifies(heap);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }

    [Fact]
    public void TheLentLeaseTableNamesEachLeaseItsClassAndItsLesseeUntilItComesBackOnce()
    {
        using NodeHeap heap = TestHeap.Create();
        var other = new LesseeId("node-other", 9);
        SpanLease a = heap.LendSpan(10, TestHeap.Lessee)!;
        SpanLease b = heap.LendSpan(12, other)!;
        Assert.NotEqual(a.LeaseId, b.LeaseId);
        Assert.Equal([new LentLease(a.LeaseId, 10, TestHeap.Lessee), new LentLease(b.LeaseId, 12, other)],
            heap.LentLeases.OrderBy(l => l.LeaseId));
        Assert.True(heap.TryReturnLease(a.LeaseId, a.FreeSlots));
        Assert.False(heap.TryReturnLease(a.LeaseId, a.FreeSlots));      // a repeated return changes nothing
        Assert.True(heap.TryReclaimLease(b.LeaseId));
        Assert.False(heap.TryReclaimLease(b.LeaseId));
        Assert.Empty(heap.LentLeases);
        TestHeap.AssertVerifies(heap);
    }

    [Fact]
    public void LendSpanReturnsNullWhenTheHeapCannotGrow()
    {
        using NodeHeap heap = TestHeap.Create(growthLimit: 1 << 20);
        MCache c = heap.CreateCache();
        c.Malloc((1 << 20) - 2 * HeapConstants.PageSize);    // leaves 2 free pages; class 32768 needs 4
        Assert.Null(heap.LendSpan(SizeClasses.ClassOf(32768) << 1, TestHeap.Lessee));
        TestHeap.AssertVerifies(heap);
    }
}
