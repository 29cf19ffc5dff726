namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// Safety and completeness of the node heap's collector against the client's model (GcModel) over random graphs:
/// tiny, noscan, typed and untyped scan, 8- and 24-byte, and large objects; pointer words holding interior pointers,
/// dangling pointers (freed objects, free arena, a tag the heap does not own, foreign addresses) and 0; roots that come
/// and go; explicit frees between cycles, landing on unswept spans. After every cycle and a finished sweep, exactly the
/// reachable objects are live (HeapObjects), each with its cookie and its pointer words intact, and the verifier is
/// clean.
/// </summary>
public unsafe class GcModelTests
{
    private const ulong CookieTag = 0xC0DEUL << 48;       // scalar words: a tag no node heap owns, so never a pointer

    private sealed class World(NodeHeap heap, MCache cache, RootSet roots, GcModel model, Random rng)
    {
        public NodeHeap Heap = heap;
        public MCache Cache = cache;
        public RootSet Roots = roots;
        public GcModel Model = model;
        public Random Rng = rng;
        public readonly Dictionary<int, ulong> RootWords = [];   // handle → word
    }

    [Theory]
    [InlineData(1, false, GcMode.StopTheWorld)]
    [InlineData(2, false, GcMode.StopTheWorld)]
    [InlineData(3, true, GcMode.StopTheWorld)]
    [InlineData(4, false, GcMode.StopTheWorld)]
    [InlineData(5, true, GcMode.StopTheWorld)]
    [InlineData(6, false, GcMode.StopTheWorld)]
    [InlineData(7, false, GcMode.Concurrent)]
    [InlineData(8, true, GcMode.Concurrent)]
    public void Every_cycle_keeps_exactly_the_reachable_objects(int seed, bool poison, GcMode mode)
    {
        using var heap = NodeHeap.Create(new HeapOptions
        {
            ArenaSize = 256 * TestHeap.MiB,
            Slot = 10,
            BackgroundScavenger = false,
            ScavengeDelay = TimeSpan.FromHours(1),
            PoisonOnFree = poison,
            GcMode = mode,
            Checkmark = mode == GcMode.Concurrent,
        });
        var w = new World(heap, heap.CreateCache(), heap.CreateRoots(), new GcModel(), new Random(seed));
        for (int round = 0; round < 8; round++)
        {
            for (int i = 0; i < 400; i++) Allocate(w);
            for (int i = 0; i < 600; i++) Wire(w);
            ChangeRoots(w, 20);
            FreeSome(w, 15);
            CheckCycle(w, round);
        }
    }

    [Fact]
    public void A_cycle_with_no_roots_reclaims_everything_and_the_heap_is_reused()
    {
        using NodeHeap heap = TestHeap.Create();
        var w = new World(heap, heap.CreateCache(), heap.CreateRoots(), new GcModel(), new Random(7));
        for (int i = 0; i < 2000; i++) Allocate(w);
        for (int i = 0; i < 2000; i++) Wire(w);
        long sys = heap.ReadMemStats().HeapSys;
        heap.Collect();
        heap.FinishSweep();
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.HeapObjects);
        Assert.Equal(0, s.HeapAlloc);
        Assert.Equal(2000, s.GcFrees);
        TestHeap.AssertVerifies(heap);
        w.Model.Live.Clear();
        w.Rng = new Random(7);
        for (int i = 0; i < 2000; i++) Allocate(w);
        Assert.Equal(sys, heap.ReadMemStats().HeapSys);          // the same allocations again fit in the swept pages
    }

    private static void Allocate(World w)
    {
        Random r = w.Rng;
        int kind = r.Next(100);
        nuint size;
        bool noscan;
        int[] ptrs;
        nuint p;
        ulong cookie = CookieTag | (ulong)r.NextInt64(1L << 47);
        if (kind < 20)
        {
            size = (nuint)r.Next(1, 16);
            p = w.Cache.Malloc(size, noscan: true);
            Add(w, p, (long)size, (long)size, true, true, [], cookie);
            return;
        }
        if (kind < 35)
        {
            size = (nuint)r.Next(16, 3000);
            noscan = true;
            ptrs = [];
            p = w.Cache.Malloc(size, noscan: true);
        }
        else if (kind < 55)
        {
            int words = r.Next(1, 40);
            size = (nuint)words * 8;
            ulong[] mask = new ulong[1];
            for (int i = 0; i < words; i++) if (r.Next(3) == 0) mask[0] |= 1UL << i;
            mask[0] |= 1;
            p = w.Cache.MallocTyped(size, mask);
            noscan = false;
            ptrs = [.. Enumerable.Range(0, words).Where(i => (mask[0] & (1UL << i)) != 0)];
        }
        else if (kind < 70)
        {
            size = r.Next(2) == 0 ? 8u : 24u;          // classes whose bitmap bytes are shared with a neighbour
            p = w.Cache.Malloc(size, noscan: false);
            noscan = false;
            ptrs = [.. Enumerable.Range(0, (int)(size / 8))];
        }
        else if (kind < 96)
        {
            size = (nuint)r.Next(1, 2048);
            p = w.Cache.Malloc(size, noscan: false);    // untyped scan: every word of the slot may be a pointer
            noscan = false;
            long slot = SizeClasses.SizeOf(SizeClasses.ClassOf(size));
            ptrs = [.. Enumerable.Range(0, (int)(slot / 8))];
        }
        else
        {
            size = (nuint)r.Next(33 << 10, 100 << 10);
            noscan = r.Next(2) == 0;
            ulong[] mask = new ulong[] { 0b1011 };
            p = noscan ? w.Cache.Malloc(size, noscan: true) : w.Cache.MallocTyped(size, mask);
            ptrs = noscan ? [] : [0, 1, 3];
            long pages = ((long)size + HeapConstants.PageMask) >> HeapConstants.PageShift;
            Add(w, p, (long)size, pages << HeapConstants.PageShift, noscan, false, ptrs, cookie);
            return;
        }
        long extent = SizeClasses.SizeOf(SizeClasses.ClassOf(size));
        Add(w, p, (long)size, extent, noscan, false, ptrs, cookie);
    }

    /// <summary>Writes the cookie into every non-pointer word (noscan and tiny objects: every byte).</summary>
    private static void Add(World w, nuint p, long size, long extent, bool noscan, bool tiny, int[] ptrs, ulong cookie)
    {
        var o = new GcModel.Obj(p, size, extent, noscan, tiny, ptrs, cookie);
        Assert.True(w.Model.Live.TryAdd(p, o), $"object {TestHeap.Hex(p)} handed out while the model holds it live");
        FillCookie(o);
    }

    private static void FillCookie(GcModel.Obj o)
    {
        var ptr = new HashSet<int>(o.PointerWords);
        long words = o.Size / 8;
        for (int i = 0; i < words; i++)
        {
            if (!ptr.Contains(i)) ((ulong*)o.Base)[i] = o.Cookie ^ (ulong)i;
        }
        for (long b = words * 8; b < o.Size; b++) ((byte*)o.Base)[b] = (byte)(o.Cookie >> (int)(8 * (b & 7)));
    }

    private static bool CookieIntact(GcModel.Obj o)
    {
        var ptr = new HashSet<int>(o.PointerWords);
        long words = o.Size / 8;
        for (int i = 0; i < words; i++)
        {
            if (!ptr.Contains(i) && ((ulong*)o.Base)[i] != (o.Cookie ^ (ulong)i)) return false;
        }
        for (long b = words * 8; b < o.Size; b++)
        {
            if (((byte*)o.Base)[b] != (byte)(o.Cookie >> (int)(8 * (b & 7)))) return false;
        }
        return true;
    }

    /// <summary>A random word a client might store: an interior or exact pointer to a live object, or garbage of every kind.</summary>
    private static ulong RandomWord(World w)
    {
        Random r = w.Rng;
        int k = r.Next(100);
        Dictionary<nuint, GcModel.Obj>.ValueCollection live = w.Model.Live.Values;
        if (k < 70 && live.Count > 0)
        {
            GcModel.Obj t = live.ElementAt(r.Next(live.Count));
            long off = r.Next(4) == 0 ? r.NextInt64(t.Extent) : 0;
            return (ulong)t.Base + (ulong)off;
        }
        if (k < 78 && w.Model.Dead.Count > 0) return (ulong)w.Model.Dead[r.Next(w.Model.Dead.Count)];
        if (k < 84) return (ulong)w.Heap.ArenaStart + (ulong)r.NextInt64((long)(w.Heap.ArenaUsed - w.Heap.ArenaStart) + (1 << 20));
        if (k < 88) return 0x0000_7f00_1234_5678UL;                                 // foreign: outside the arena
        if (k < 92 && live.Count > 0) return (0x0042UL << 48) | (ulong)live.ElementAt(r.Next(live.Count)).Base;   // another generation
        return 0;
    }

    private static void Wire(World w)
    {
        GcModel.Obj[] scan = w.Model.Live.Values.Where(o => o.PointerWords.Length > 0).ToArray();
        if (scan.Length == 0) return;
        GcModel.Obj o = scan[w.Rng.Next(scan.Length)];
        int word = o.PointerWords[w.Rng.Next(o.PointerWords.Length)];
        if ((word + 1) * 8 > o.Size) return;                     // past the requested size: the client does not own it
        ((ulong*)o.Base)[word] = RandomWord(w);
    }

    private static void ChangeRoots(World w, int n)
    {
        for (int i = 0; i < n; i++)
        {
            if (w.RootWords.Count > 0 && w.Rng.Next(3) == 0)
            {
                int h = w.RootWords.Keys.ElementAt(w.Rng.Next(w.RootWords.Count));
                w.Roots.Remove(h);
                w.RootWords.Remove(h);
            }
            else
            {
                ulong word = RandomWord(w);
                w.RootWords[w.Roots.Add(word)] = word;
            }
        }
    }

    /// <summary>Explicit frees, by the owner: some land on spans the last cycle left unswept.</summary>
    private static void FreeSome(World w, int n)
    {
        for (int i = 0; i < n && w.Model.Live.Count > 0; i++)
        {
            GcModel.Obj o = w.Model.Live.Values.ElementAt(w.Rng.Next(w.Model.Live.Count));
            Assert.Equal(PointerError.None, w.Cache.TryFree(o.Base));
            w.Model.Live.Remove(o.Base);
            w.Model.Dead.Add(o.Base);
        }
    }

    private static void CheckCycle(World w, int round)
    {
        HashSet<nuint> reachable = w.Model.Reachable(w.RootWords.Values);
        var words = w.Model.Live.Values.ToDictionary(o => o.Base, o => o.PointerWords.Where(i => (i + 1) * 8 <= o.Size).Select(i => ((ulong*)o.Base)[i]).ToArray());
        GcCycle cycle = w.Heap.Collect();
        Assert.True(cycle.Counts.Dangling > 0 || round == 0 || cycle.Counts.Objects > 0);
        w.Heap.FinishSweep();
        foreach (GcModel.Obj o in w.Model.Live.Values.ToArray())
        {
            if (reachable.Contains(o.Base))
            {
                PointerError e = w.Heap.CheckRange(o.Base, o.Size, out _);
                Assert.True(e == PointerError.None, $"round {round}: reachable {(o.Tiny ? "tiny" : o.Noscan ? "noscan" : "scan")} object {TestHeap.Hex(o.Base)} ({o.Size} B) was reclaimed: {e}");
                Assert.True(CookieIntact(o), $"round {round}: reachable object {TestHeap.Hex(o.Base)} lost its cookie");
                Assert.Equal(words[o.Base], o.PointerWords.Where(i => (i + 1) * 8 <= o.Size).Select(i => ((ulong*)o.Base)[i]).ToArray());
            }
            else
            {
                w.Model.Live.Remove(o.Base);
                w.Model.Dead.Add(o.Base);
                Assert.NotEqual(PointerError.None, w.Heap.CheckRange(o.Base, 1, out _));
            }
        }
        MemStats s = w.Heap.ReadMemStats();
        Assert.Equal(reachable.Count, s.HeapObjects);
        Assert.False(s.SweepPending);
        TestHeap.AssertVerifies(w.Heap);
    }
}
