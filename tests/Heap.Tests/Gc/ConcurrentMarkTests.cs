namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// The concurrent mark through mark sessions (GcMarkSession, concurrent mode), as a coordinator drives it: one heap, and
/// three heaps in one process (slots 41–43) whose pointer words carry their node's generation. Between mark steps the
/// client mutates — allocates (born marked), rewires pointer words through TryWrite (the write barrier), adds and drops
/// roots, frees explicitly — touching only objects its model says are reachable, as a real mutator can. Safety: every
/// object reachable at the cycle's end is live with its cookie. Completeness: every object unreachable at the cycle's
/// start is reclaimed by its end; garbage made during the cycle by the next one. Termination: rounds of MarkTermination
/// and routed Shade until every node reports Done and every word sent was received.
/// </summary>
public unsafe class ConcurrentMarkTests
{
    private const ulong Generation = 1;
    private const ulong ArenaBase = 0x00c0UL << 32;
    private const int FirstSlot = 41;

    private sealed class Node(NodeHeap heap)
    {
        public readonly NodeHeap Heap = heap;
        public readonly MCache Cache = heap.CreateCache();
        public readonly RootSet Roots = heap.CreateRoots();
        public readonly Dictionary<int, ulong> RootWords = [];      // handle → word
    }

    private sealed class Cluster : IDisposable
    {
        public readonly Node[] Nodes;
        public readonly GcModel Model = new() { Tag = Generation };
        public readonly Dictionary<nuint, int> NodeOf = [];
        public readonly Dictionary<nuint, ulong> Cookies = [];
        public readonly Random Rng;
        public long Sent, Received;

        public Cluster(int nodes, int seed, bool checkmark = true)
        {
            Rng = new Random(seed);
            Nodes = [.. Enumerable.Range(0, nodes).Select(i =>
            {
                var h = NodeHeap.Create(new HeapOptions
                {
                    ArenaSize = 64 * TestHeap.MiB,
                    Slot = FirstSlot + i,
                    BackgroundScavenger = false,
                    GcMode = GcMode.Concurrent,
                    Checkmark = checkmark,
                });
                h.PointerGeneration = (ushort)Generation;
                return new Node(h);
            })];
        }

        public int? OwnerOf(ulong word)
        {
            ulong a = word & ((1UL << 48) - 1);
            if (a < ArenaBase || (word >> 48) != Generation) return null;
            int i = (int)((a - ArenaBase) >> 40) - FirstSlot;
            return i >= 0 && i < Nodes.Length ? i : null;
        }

        public IEnumerable<ulong> AllRoots => Nodes.SelectMany(n => n.RootWords.Values);

        public void Dispose()
        {
            foreach (Node n in Nodes) n.Heap.Dispose();
        }
    }

    // ---- the client's actions; during a mark they touch only reachable objects ----

    private static GcModel.Obj Allocate(Cluster c, int node)
    {
        Node n = c.Nodes[node];
        int kind = c.Rng.Next(10);
        nuint p;
        GcModel.Obj o;
        ulong cookie = 0xC0DEUL << 48 | (ulong)c.Rng.NextInt64(1L << 40);
        if (kind < 6)
        {
            p = n.Cache.MallocTyped(32, [0b1011]);                        // words 0, 1, 3 pointers; word 2 the cookie
            o = new GcModel.Obj(p, 32, 32, false, false, [0, 1, 3], cookie);
            ((ulong*)p)[2] = cookie;
        }
        else if (kind < 8)
        {
            p = n.Cache.Malloc(48, noscan: true);
            o = new GcModel.Obj(p, 48, 48, true, false, [], cookie);
            ((ulong*)p)[0] = cookie;
        }
        else if (kind < 9)
        {
            p = n.Cache.Malloc(8, noscan: true);                           // tiny
            o = new GcModel.Obj(p, 8, 8, true, true, [], cookie);
            ((ulong*)p)[0] = cookie;
        }
        else
        {
            p = n.Cache.MallocTyped(40 << 10, [0b11]);                    // large: 5 pages, words 0 and 1 pointers
            o = new GcModel.Obj(p, 40 << 10, 40 << 10, false, false, [0, 1], cookie);
            ((ulong*)p)[2] = cookie;
        }
        c.Model.Live.Add(p, o);
        c.NodeOf[p] = node;
        c.Cookies[p] = cookie;
        return o;
    }

    private static bool CookieIntact(GcModel.Obj o) => ((ulong*)o.Base)[o.PointerWords.Length == 0 ? 0 : 2] == o.Cookie;

    private static ulong WordFor(GcModel.Obj t, Random rng) =>
        Generation << 48 | ((ulong)t.Base + (rng.Next(4) == 0 ? (ulong)rng.NextInt64(Math.Min(t.Extent, 32)) : 0));

    /// <summary>A pointer-word write through the owner's TryWrite, as the cluster routes it (the barrier sits there).</summary>
    private static void WriteWord(Cluster c, GcModel.Obj o, int word, ulong value)
    {
        NodeHeap h = c.Nodes[c.NodeOf[o.Base]].Heap;
        Assert.Equal(PointerError.None, h.TryWrite(o.Base + (nuint)(word * 8), new ReadOnlySpan<byte>(&value, 8)));
    }

    /// <summary>Before a cycle: any word, including dangling ones and words into garbage.</summary>
    private static void WireFreely(Cluster c, int count)
    {
        GcModel.Obj[] live = [.. c.Model.Live.Values];
        GcModel.Obj[] scan = [.. live.Where(o => o.PointerWords.Length > 0)];
        for (int k = 0; k < count && scan.Length > 0; k++)
        {
            GcModel.Obj o = scan[c.Rng.Next(scan.Length)];
            int r = c.Rng.Next(10);
            ulong w = r < 7 ? WordFor(live[c.Rng.Next(live.Length)], c.Rng)
                : r < 8 && c.Model.Dead.Count > 0 ? Generation << 48 | (ulong)c.Model.Dead[c.Rng.Next(c.Model.Dead.Count)]
                : 0;
            WriteWord(c, o, o.PointerWords[c.Rng.Next(o.PointerWords.Length)], w);
        }
    }

    private static void AddRoot(Cluster c, ulong word)
    {
        Node n = c.Nodes[c.Rng.Next(c.Nodes.Length)];          // a root on one node may name an object on another
        n.RootWords[n.Roots.Add(word)] = word;
    }

    private static void DropRoot(Cluster c)
    {
        Node n = c.Nodes[c.Rng.Next(c.Nodes.Length)];
        if (n.RootWords.Count == 0) return;
        int h = n.RootWords.Keys.ElementAt(c.Rng.Next(n.RootWords.Count));
        n.Roots.Remove(h);
        n.RootWords.Remove(h);
    }

    /// <summary>
    /// One burst of mutation while the heaps mark: new objects (rooted, or hung from reachable ones), pointer words of
    /// reachable objects rewired to reachable objects or cleared, roots added and dropped, explicit frees of unrooted
    /// reachable objects' targets never (a free of a reachable object would be the client's bug).
    /// </summary>
    private static void Mutate(Cluster c, int actions)
    {
        for (int k = 0; k < actions; k++)
        {
            GcModel.Obj[] reach = [.. c.Model.Reachable(c.AllRoots).Select(b => c.Model.Live[b])];
            GcModel.Obj[] scan = [.. reach.Where(o => o.PointerWords.Length > 0)];
            int r = c.Rng.Next(10);
            if (r < 3 || reach.Length == 0)
            {
                GcModel.Obj o = Allocate(c, c.Rng.Next(c.Nodes.Length));
                if (scan.Length > 0 && c.Rng.Next(2) == 0)
                {
                    GcModel.Obj parent = scan[c.Rng.Next(scan.Length)];
                    AddRoot(c, WordFor(o, c.Rng));                           // held by a root until it hangs somewhere
                    WriteWord(c, parent, parent.PointerWords[c.Rng.Next(parent.PointerWords.Length)], WordFor(o, c.Rng));
                }
                else
                {
                    AddRoot(c, WordFor(o, c.Rng));
                }
            }
            else if (r < 7 && scan.Length > 0)
            {
                GcModel.Obj o = scan[c.Rng.Next(scan.Length)];
                ulong w = c.Rng.Next(4) == 0 ? 0 : WordFor(reach[c.Rng.Next(reach.Length)], c.Rng);
                WriteWord(c, o, o.PointerWords[c.Rng.Next(o.PointerWords.Length)], w);
            }
            else if (r < 8)
            {
                AddRoot(c, WordFor(reach[c.Rng.Next(reach.Length)], c.Rng));
            }
            else
            {
                DropRoot(c);
            }
        }
    }

    // ---- the coordinator ----

    private void Route(Cluster c, ulong[] words, List<ulong>[] inbox)
    {
        foreach (ulong w in words)
        {
            int? owner = c.OwnerOf(w);
            Assert.True(owner != null, $"a foreign word 0x{w:x} names no node of this cluster");
            inbox[owner!.Value].Add(w);
            c.Sent++;
        }
    }

    private void Deliver(Cluster c, GcMarkSession[] sessions, List<ulong>[] inbox)
    {
        while (inbox.Any(b => b.Count > 0))
        {
            ulong[][] batches = [.. inbox.Select(b => b.ToArray())];
            foreach (List<ulong> b in inbox) b.Clear();
            for (int i = 0; i < batches.Length; i++)
            {
                if (batches[i].Length == 0) continue;
                c.Received += batches[i].Length;
                Route(c, sessions[i].Shade(batches[i]), inbox);
            }
        }
    }

    /// <summary>
    /// One concurrent cycle with <paramref name="bursts"/> bursts of mutation between mark steps. Returns the objects
    /// unreachable at its start (that the cycle must reclaim).
    /// </summary>
    private HashSet<nuint> RunCycle(Cluster c, int bursts)
    {
        HashSet<nuint> reachableAtStart = c.Model.Reachable(c.AllRoots);
        var garbageAtStart = new HashSet<nuint>(c.Model.Live.Keys.Where(b => !reachableAtStart.Contains(b)));
        GcMarkSession[] sessions = [.. c.Nodes.Select(n => n.Heap.BeginConcurrentMarkSession())];
        Assert.All(sessions, s => Assert.True(s.IsConcurrent));
        Assert.All(c.Nodes, n => Assert.True(n.Heap.IsMarking));
        var inbox = new List<ulong>[c.Nodes.Length];
        for (int i = 0; i < inbox.Length; i++) inbox[i] = [];
        for (int i = 0; i < sessions.Length; i++) Route(c, sessions[i].ShadeRoots(), inbox);
        for (int b = 0; b < bursts; b++)
        {
            Mutate(c, 30);
            for (int i = 0; i < sessions.Length; i++) Route(c, sessions[i].MarkStep(maxObjects: 40).Outgoing, inbox);
            Deliver(c, sessions, inbox);
        }
        // Termination: the mutators are stopped (this thread does not mutate from here); rounds until all are Done.
        int rounds = 0;
        while (true)
        {
            Assert.True(++rounds < 100, "mark termination did not converge");
            bool done = true;
            for (int i = 0; i < sessions.Length; i++)
            {
                GcMarkTermination t = sessions[i].MarkTermination();
                done &= t.Done;
                Route(c, t.Outgoing, inbox);
            }
            bool routed = inbox.Any(b => b.Count > 0);
            Deliver(c, sessions, inbox);
            if (done && !routed) break;
        }
        Assert.Equal(c.Sent, c.Received);
        foreach (GcMarkSession s in sessions) Assert.True(s.Finish().Concurrent);
        Assert.All(c.Nodes, n => Assert.False(n.Heap.IsMarking));
        foreach (Node n in c.Nodes) n.Heap.FinishSweep();
        return garbageAtStart;
    }

    /// <summary>After a cycle: reachable objects live and intact; garbage from its start gone; the model follows the heaps.</summary>
    private static void Check(Cluster c, HashSet<nuint> garbageAtStart, string at)
    {
        HashSet<nuint> reachable = c.Model.Reachable(c.AllRoots);
        // A tiny block lives as a whole: one that got a new object during the cycle (born marked) keeps its old garbage.
        var keptBlocks = new HashSet<nuint>(c.Model.Live.Values.Where(o => o.Tiny && !garbageAtStart.Contains(o.Base)).Select(o => o.Block));
        foreach (GcModel.Obj o in c.Model.Live.Values.ToArray())
        {
            NodeHeap h = c.Nodes[c.NodeOf[o.Base]].Heap;
            bool live = h.CheckRange(o.Base, o.Size, out _) == PointerError.None;
            if (reachable.Contains(o.Base))
            {
                Assert.True(live, $"{at}: reachable object {TestHeap.Hex(o.Base)} on node {c.NodeOf[o.Base]} was reclaimed");
                Assert.True(CookieIntact(o), $"{at}: reachable object {TestHeap.Hex(o.Base)} lost its cookie");
            }
            else if (garbageAtStart.Contains(o.Base) && !(o.Tiny && keptBlocks.Contains(o.Block)))
            {
                Assert.False(live, $"{at}: object {TestHeap.Hex(o.Base)} was garbage when the cycle started and survived it");
            }
            if (!live)
            {
                c.Model.Live.Remove(o.Base);
                c.Model.Dead.Add(o.Base);
            }
        }
        for (int i = 0; i < c.Nodes.Length; i++)
        {
            Assert.Equal(c.Model.Live.Keys.Count(b => c.NodeOf[b] == i), c.Nodes[i].Heap.ReadMemStats().HeapObjects);
            TestHeap.AssertVerifies(c.Nodes[i].Heap);
        }
    }

    [Theory]
    [InlineData(1, 1)]
    [InlineData(1, 2)]
    [InlineData(3, 3)]
    [InlineData(3, 4)]
    [InlineData(3, 5)]
    public void Concurrent_cycles_with_mutation_between_steps_are_safe_and_complete(int nodes, int seed)
    {
        using var c = new Cluster(nodes, seed);
        for (int k = 0; k < 300; k++) Allocate(c, c.Rng.Next(nodes));
        WireFreely(c, 500);
        for (int k = 0; k < 15; k++) AddRoot(c, WordFor(c.Model.Live.Values.ElementAt(c.Rng.Next(c.Model.Live.Count)), c.Rng));
        for (int cycle = 0; cycle < 4; cycle++)
        {
            HashSet<nuint> garbage = RunCycle(c, bursts: 6);
            Check(c, garbage, $"cycle {cycle}");
            for (int k = 0; k < 100; k++) Allocate(c, c.Rng.Next(nodes));
            WireFreely(c, 150);
        }
        Assert.All(c.Nodes, n => Assert.True(n.Heap.LastCycle!.Concurrent));
    }

    [Fact]
    public void A_cycle_of_garbage_over_three_nodes_made_during_a_mark_goes_by_the_next_cycle()
    {
        using var c = new Cluster(3, 9);
        GcModel.Obj[] ring = [.. Enumerable.Range(0, 3).Select(i =>
        {
            nuint p = c.Nodes[i].Cache.MallocTyped(32, [0b1011]);
            var o = new GcModel.Obj(p, 32, 32, false, false, [0, 1, 3], 0xC0DEUL << 48 | (uint)i);
            ((ulong*)p)[2] = o.Cookie;
            c.Model.Live.Add(p, o);
            c.NodeOf[p] = i;
            return o;
        })];
        for (int i = 0; i < 3; i++) WriteWord(c, ring[i], 0, WordFor(ring[(i + 1) % 3], c.Rng));
        c.Nodes[1].RootWords[c.Nodes[1].Roots.Add(Generation << 48 | ring[0].Base)] = Generation << 48 | ring[0].Base;
        GcMarkSession[] sessions = [.. c.Nodes.Select(n => n.Heap.BeginConcurrentMarkSession())];
        // The ring's only root goes while the heaps mark: it was reachable at the start, so this cycle keeps it.
        c.Nodes[1].Roots.Remove(c.Nodes[1].RootWords.Keys.Single());
        c.Nodes[1].RootWords.Clear();
        foreach (GcMarkSession s in sessions) s.Abort();                   // (an aborted concurrent cycle first: frees nothing)
        Assert.All(c.Nodes, n => Assert.Equal(1, n.Heap.ReadMemStats().HeapObjects));
        Assert.All(c.Nodes, n => TestHeap.AssertVerifies(n.Heap));
        c.Nodes[1].RootWords[c.Nodes[1].Roots.Add(Generation << 48 | ring[0].Base)] = Generation << 48 | ring[0].Base;
        HashSet<nuint> reachableAtStart = c.Model.Reachable(c.AllRoots);
        Assert.Equal(3, reachableAtStart.Count);
        sessions = [.. c.Nodes.Select(n => n.Heap.BeginConcurrentMarkSession())];
        var inbox = new List<ulong>[3];
        for (int i = 0; i < 3; i++) inbox[i] = [];
        for (int i = 0; i < 3; i++) Route(c, sessions[i].ShadeRoots(), inbox);
        c.Nodes[1].Roots.Remove(c.Nodes[1].RootWords.Keys.Single());
        c.Nodes[1].RootWords.Clear();
        Deliver(c, sessions, inbox);
        while (true)
        {
            GcMarkTermination[] t = [.. sessions.Select(s => s.MarkTermination())];
            foreach (GcMarkTermination x in t) Route(c, x.Outgoing, inbox);
            if (t.All(x => x.Done) && inbox.All(b => b.Count == 0)) break;
            Deliver(c, sessions, inbox);
        }
        foreach (GcMarkSession s in sessions) s.Finish();
        foreach (Node n in c.Nodes) n.Heap.FinishSweep();
        Assert.All(c.Nodes, n => Assert.Equal(1, n.Heap.ReadMemStats().HeapObjects));    // reachable at the start: kept
        HashSet<nuint> garbage = RunCycle(c, bursts: 0);
        Assert.Equal(3, garbage.Count);
        Check(c, garbage, "next cycle");
        Assert.All(c.Nodes, n => Assert.Equal(0, n.Heap.ReadMemStats().HeapObjects));
    }

    [Fact]
    public void Finish_refuses_while_the_last_drain_finds_words_for_other_nodes()
    {
        using var c = new Cluster(2, 3);
        GcModel.Obj a = Allocate(c, 0);
        while (a.PointerWords.Length == 0 || a.Size > 32) a = Allocate(c, 0);
        GcModel.Obj b = Allocate(c, 1);
        AddRoot(c, WordFor(a, c.Rng));
        GcMarkSession[] sessions = [.. c.Nodes.Select(n => n.Heap.BeginConcurrentMarkSession())];
        foreach (GcMarkSession s in sessions) s.ShadeRoots();
        Assert.All(sessions, s => Assert.True(s.MarkTermination().Done));
        // A mutator that was not stopped writes a pointer to node 1's object after node 0 reported Done.
        ulong toB = WordFor(b, c.Rng);
        WriteWord(c, a, 0, toB);
        InvalidOperationException e = Assert.Throws<InvalidOperationException>(() => sessions[0].Finish());
        Assert.Contains("for other nodes", e.Message);
        Assert.True(sessions[0].IsOpen);
        GcMarkTermination t = sessions[0].MarkTermination();
        Assert.False(t.Done);
        Assert.Equal([toB], t.Outgoing);
        Assert.Empty(sessions[1].Shade(t.Outgoing));
        Assert.All(sessions, s => Assert.True(s.MarkTermination().Done));
        foreach (GcMarkSession s in sessions) s.Finish();
        foreach (Node n in c.Nodes) n.Heap.FinishSweep();
        Assert.Equal(PointerError.None, c.Nodes[1].Heap.CheckRange(b.Base, b.Size, out _));
    }
}
