namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// Node heaps marking together through mark sessions (GcMarkSession), as the cluster's stop-the-world cycle drives them:
/// three heaps in one process (slots 11–13), pointer words carrying their node's generation, roots on any node pointing
/// anywhere, marks for other nodes routed in batches by a coordinator that counts marks sent and received. Safety and
/// completeness against the client's model over random graphs with cross-node pointers and cross-node cycles; an aborted
/// cycle frees nothing and leaves no mark behind.
/// </summary>
public unsafe class CrossNodeMarkTests
{
    private const ulong Generation = 1;
    private const ulong ArenaBase = 0x00c0UL << 32;

    private sealed class Node(NodeHeap heap)
    {
        public readonly NodeHeap Heap = heap;
        public readonly MCache Cache = heap.CreateCache();
        public readonly RootSet Roots = heap.CreateRoots();
        public bool Alive = true;
    }

    private sealed class Cluster : IDisposable
    {
        public readonly Node[] Nodes;
        public readonly GcModel Model = new() { Tag = Generation };
        public readonly List<ulong> RootWords = [];
        public readonly Dictionary<nuint, int> NodeOf = [];      // object base → node index
        public readonly Random Rng;

        public Cluster(int seed)
        {
            Rng = new Random(seed);
            Nodes = [.. Enumerable.Range(0, 3).Select(i =>
            {
                NodeHeap h = TestHeap.Create(arena: 64 * TestHeap.MiB, slot: 11 + i);
                h.PointerGeneration = (ushort)Generation;
                return new Node(h);
            })];
        }

        public int? OwnerOf(ulong word)
        {
            ulong a = word & ((1UL << 48) - 1);
            if (a < ArenaBase) return null;
            int slot = (int)((a - ArenaBase) >> 40);
            int i = slot - 11;
            return i >= 0 && i < Nodes.Length && Nodes[i].Alive ? i : null;
        }

        public void Dispose()
        {
            foreach (Node n in Nodes) n.Heap.Dispose();
        }
    }

    /// <summary>
    /// One coordinated cycle: every live node begins a session and marks from its roots; foreign words go to their
    /// owners in batches, round after round, until a round sends nothing and every mark sent was received (Mattern's
    /// counting, trivially exact here since delivery is synchronous). <paramref name="killAfterRound"/>: that node dies
    /// after the first round and the cycle aborts. Returns the marks routed, or -1 when aborted.
    /// </summary>
    private static long RunCycle(Cluster c, int killAfterRound = -1)
    {
        (Node n, int i)[] live = c.Nodes.Select((n, i) => (n, i)).Where(x => x.n.Alive).ToArray();
        var sessions = new GcMarkSession?[c.Nodes.Length];
        var inbox = new List<ulong>[c.Nodes.Length];
        for (int i = 0; i < inbox.Length; i++) inbox[i] = [];
        foreach ((Node? n, int i) in live) sessions[i] = n.Heap.BeginMarkSession();
        long sent = 0, received = 0, dropped = 0;
        void Route(ulong[] words)
        {
            foreach (ulong w in words)
            {
                int? owner = c.OwnerOf(w);
                if (owner is int o) { inbox[o].Add(w); sent++; }
                else
                {
                    dropped++;                                   // a node that is gone: dangling
                }
            }
        }
        foreach ((Node? n, int i) in live) Route(sessions[i]!.ShadeRoots());
        int round = 0;
        while (inbox.Any(b => b.Count > 0))
        {
            if (round++ == killAfterRound)
            {
                c.Nodes[2].Alive = false;
                foreach (GcMarkSession? s in sessions) s?.Abort();
                return -1;
            }
            ulong[][] batches = inbox.Select(b => b.ToArray()).ToArray();
            foreach (List<ulong> b in inbox) b.Clear();
            for (int i = 0; i < batches.Length; i++)
            {
                if (batches[i].Length == 0) continue;
                received += batches[i].Length;
                Route(sessions[i]!.Shade(batches[i]));
            }
        }
        Assert.Equal(sent, received);
        foreach ((Node? n, int i) in live)
        {
            sessions[i]!.Finish();
            n.Heap.FinishSweep();
        }
        return sent;
    }

    private static void Allocate(Cluster c, int count)
    {
        for (int k = 0; k < count; k++)
        {
            int i = c.Rng.Next(c.Nodes.Length);
            Node n = c.Nodes[i];
            if (!n.Alive) continue;
            int kind = c.Rng.Next(10);
            nuint p;
            GcModel.Obj o;
            if (kind < 6)
            {
                p = n.Cache.MallocTyped(32, [0b1011]);
                o = new GcModel.Obj(p, 32, 32, false, false, [0, 1, 3], 0);
            }
            else if (kind < 8)
            {
                p = n.Cache.Malloc(48, noscan: true);
                o = new GcModel.Obj(p, 48, 48, true, false, [], 0);
            }
            else if (kind < 9)
            {
                p = n.Cache.Malloc(5, noscan: true);
                o = new GcModel.Obj(p, 5, 5, true, true, [], 0);
            }
            else
            {
                p = n.Cache.MallocTyped(40 << 10, [0b11]);
                o = new GcModel.Obj(p, 40 << 10, 40 << 10, false, false, [0, 1], 0);    // 5 pages exactly
            }
            c.Model.Live.Add(p, o);
            c.NodeOf[p] = i;
        }
    }

    private static ulong RandomWord(Cluster c)
    {
        int k = c.Rng.Next(100);
        Dictionary<nuint, GcModel.Obj>.ValueCollection live = c.Model.Live.Values;
        if (k < 80 && live.Count > 0)
        {
            GcModel.Obj t = live.ElementAt(c.Rng.Next(live.Count));
            long off = c.Rng.Next(5) == 0 ? c.Rng.NextInt64(t.Extent) : 0;
            return Generation << 48 | ((ulong)t.Base + (ulong)off);
        }
        if (k < 88 && c.Model.Dead.Count > 0) return Generation << 48 | (ulong)c.Model.Dead[c.Rng.Next(c.Model.Dead.Count)];
        if (k < 92 && live.Count > 0) return 7UL << 48 | (ulong)live.ElementAt(c.Rng.Next(live.Count)).Base;   // a stale generation
        return 0;
    }

    private static void Wire(Cluster c, int count)
    {
        GcModel.Obj[] scan = c.Model.Live.Values.Where(o => o.PointerWords.Length > 0).ToArray();
        for (int k = 0; k < count && scan.Length > 0; k++)
        {
            GcModel.Obj o = scan[c.Rng.Next(scan.Length)];
            ((ulong*)o.Base)[o.PointerWords[c.Rng.Next(o.PointerWords.Length)]] = RandomWord(c);
        }
    }

    private static void SetRoots(Cluster c, int count)
    {
        foreach (Node n in c.Nodes) n.Roots.Clear();
        c.RootWords.Clear();
        for (int k = 0; k < count; k++)
        {
            Node n = c.Nodes[c.Rng.Next(c.Nodes.Length)];
            if (!n.Alive) continue;
            ulong w = RandomWord(c);
            n.Roots.Add(w);                                        // a root on one node may name an object on another
            c.RootWords.Add(w);
        }
    }

    private static void CheckAgainstModel(Cluster c)
    {
        HashSet<nuint> reachable = c.Model.Reachable(c.RootWords);
        RunCycle(c);
        foreach (GcModel.Obj o in c.Model.Live.Values.ToArray())
        {
            NodeHeap h = c.Nodes[c.NodeOf[o.Base]].Heap;
            if (reachable.Contains(o.Base))
            {
                Assert.True(h.CheckRange(o.Base, o.Size, out _) == PointerError.None, $"reachable object {TestHeap.Hex(o.Base)} on node {c.NodeOf[o.Base]} was reclaimed");
            }
            else
            {
                Assert.NotEqual(PointerError.None, h.CheckRange(o.Base, 1, out _));
                c.Model.Live.Remove(o.Base);
                c.Model.Dead.Add(o.Base);
            }
        }
        for (int i = 0; i < c.Nodes.Length; i++)
        {
            if (!c.Nodes[i].Alive) continue;
            Assert.Equal(c.Model.Live.Keys.Count(b => c.NodeOf[b] == i), c.Nodes[i].Heap.ReadMemStats().HeapObjects);
            TestHeap.AssertVerifies(c.Nodes[i].Heap);
        }
    }

    [Theory]
    [InlineData(11)]
    [InlineData(12)]
    [InlineData(13)]
    [InlineData(14)]
    public void Coordinated_cycles_keep_exactly_what_is_reachable_across_nodes(int seed)
    {
        using var c = new Cluster(seed);
        for (int round = 0; round < 5; round++)
        {
            Allocate(c, 600);
            Wire(c, 900);
            SetRoots(c, 25);
            CheckAgainstModel(c);
        }
    }

    [Fact]
    public void A_cycle_of_garbage_over_three_nodes_is_reclaimed_and_a_rooted_one_kept()
    {
        using var c = new Cluster(1);
        nuint[] ring = [.. c.Nodes.Select(n => n.Cache.MallocTyped(16, [0b11]))];
        for (int i = 0; i < 3; i++) ((ulong*)ring[i])[0] = Generation << 48 | ring[(i + 1) % 3];
        int h = c.Nodes[1].Roots.Add(Generation << 48 | ring[0]);     // rooted on node 1, the object on node 0
        Assert.Equal(4, RunCycle(c));          // marks routed: root on node1 → node0, node0 → node1, node1 → node2, node2 → node0 (marked already)
        Assert.All(c.Nodes, n => Assert.Equal(1, n.Heap.ReadMemStats().HeapObjects));
        c.Nodes[1].Roots.Remove(h);
        RunCycle(c);
        Assert.All(c.Nodes, n => Assert.Equal(0, n.Heap.ReadMemStats().HeapObjects));
        Assert.All(c.Nodes, n => TestHeap.AssertVerifies(n.Heap));
    }

    [Fact]
    public void An_aborted_cycle_frees_nothing_and_the_next_one_completes_without_the_dead_node()
    {
        using var c = new Cluster(5);
        Allocate(c, 900);
        Wire(c, 1500);
        SetRoots(c, 20);
        long[] before = [.. c.Nodes.Select(n => n.Heap.ReadMemStats().HeapObjects)];
        Assert.Equal(-1, RunCycle(c, killAfterRound: 0));
        for (int i = 0; i < 2; i++)
        {
            Assert.Equal(before[i], c.Nodes[i].Heap.ReadMemStats().HeapObjects);   // nothing swept on a half mark
            Assert.False(c.Nodes[i].Heap.SweepPending);
            TestHeap.AssertVerifies(c.Nodes[i].Heap);                             // and no mark bit left behind
        }
        // Node 2 is gone: its objects are lost, and words naming them lead nowhere.
        foreach (nuint b in c.Model.Live.Keys.Where(b => c.NodeOf[b] == 2).ToArray()) c.Model.Live.Remove(b);
        c.RootWords.Clear();
        for (int i = 0; i < 2; i++)
        {
            foreach (ulong w in WordsOf(c.Nodes[i].Roots)) c.RootWords.Add(w);
        }
        CheckAgainstModel(c);
    }

    [Fact]
    public void While_a_session_marks_the_heap_runs_no_cycle_of_its_own()
    {
        using NodeHeap heap = TestHeap.Create(slot: 14);
        MCache cache = heap.CreateCache();
        nuint a = cache.Malloc(64, noscan: true);
        GcMarkSession session = heap.BeginMarkSession();
        Assert.Throws<InvalidOperationException>(() => heap.Collect());
        Assert.Throws<InvalidOperationException>(() => heap.BeginMarkSession());
        Assert.Empty(session.ShadeRoots());
        session.Abort();
        Assert.Throws<InvalidOperationException>(() => session.ShadeRoots());
        Assert.Equal(PointerError.None, heap.TryFindObject(a, out _));
        heap.Collect();                                      // the session is gone: cycles run again
        heap.FinishSweep();
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }

    private static IEnumerable<ulong> WordsOf(RootSet roots)
    {
        for (int i = 0; i < roots.Count; i++) yield return roots[i];
    }
}
