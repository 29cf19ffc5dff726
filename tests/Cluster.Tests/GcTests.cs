using ClusterHeap.Contracts;
using ClusterHeap.Grains.Gc;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.TestingHost;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// The cluster collector on real silos (docs/DESIGN.md §12): client roots, cycles coordinated by the central heap,
/// cross-node marks, abort on a node's or the coordinator's death, the pacer and out of memory. Each test checks the
/// heap against its own model of the graph: which objects are reachable from the client's roots through pointer words.
/// </summary>
public sealed class GcTests
{
    private const int ObjectSize = 64;                // 8 words: word 0 the cookie, words 1..7 pointer words
    private const ulong CookieTag = 0xC0DEUL << 48;   // never an arena address (slot -1), so the marker never follows it

    /// <summary>
    /// One client's picture of its objects: where each lives, its links, and which it roots. The client is a real
    /// connection (<paramref name="connection"/>: the test cluster's client, or a silo's hosted client); the cluster knows
    /// it by the grain id every call it makes carries, which its lease names (<see cref="StartLeaseAsync"/>).
    /// </summary>
    private sealed class Model(HeapCluster heap, IClusterClient connection)
    {
        public List<HeapPointer> Objects { get; } = [];
        public Dictionary<HeapPointer, HeapPointer[]> Links { get; } = [];
        public HashSet<HeapPointer> Roots { get; } = [];
        public Dictionary<int, string> NodeOfSlot { get; } = [];
        public GrainId Client { get; private set; }

        public ICentralGcGrain Gc => connection.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

        public IMCacheGrain MCache(string node) => connection.GetGrain<IMCacheGrain>(GrainKeys.MCache(node, 0));

        /// <summary>Renews this client's lease (as ClientRootLease does every period) and learns its id from it.</summary>
        public async Task<ClientLease> StartLeaseAsync()
        {
            ClientLease lease = await Gc.RenewClientAsync();
            Client = lease.Client;
            return lease;
        }

        public async Task<HeapPointer> NewAsync(string node)
        {
            HeapPointer p = await MCache(node).MallocAsync(ObjectSize, ObjectKind.Pointer);
            await heap.Router.WriteAsync(p, BitConverter.GetBytes(CookieTag | (uint)Objects.Count));
            Objects.Add(p);
            Links[p] = new HeapPointer[7];
            Roots.Add(p);
            return p;
        }

        public IGcNodeGrain GcOf(HeapPointer p) => heap.Client.GetGrain<IGcNodeGrain>(NodeOfSlot[p.Slot]);

        /// <summary>Another client's model over the same nodes: silo <paramref name="silo"/>'s hosted client (its calls carry that silo's client id).</summary>
        public Model OnHostedClient(int silo)
        {
            var other = new Model(heap, heap.Cluster.GetSiloServiceProvider(heap.Cluster.Silos[silo].SiloAddress).GetRequiredService<IClusterClient>());
            foreach ((int slot, string node) in NodeOfSlot)
            {
                other.NodeOfSlot[slot] = node;
            }

            return other;
        }

        public async Task LinkAsync(HeapPointer from, int word, HeapPointer to)
        {
            await GcOf(from).LinkAsync(from.Offset(8 * (word + 1)), to);
            Links[from][word] = to;
        }

        public async Task ReleaseAsync(HeapPointer p)
        {
            Assert.Equal(1, await GcOf(p).ReleaseRootsAsync(Client, [p]));
            Roots.Remove(p);
        }

        public HashSet<HeapPointer> Reachable()
        {
            var seen = new HashSet<HeapPointer>();
            var stack = new Stack<HeapPointer>(Roots);
            while (stack.TryPop(out HeapPointer p))
            {
                if (seen.Add(p))
                {
                    foreach (HeapPointer q in Links[p].Where(q => !q.IsNull && Links.ContainsKey(q)))
                    {
                        stack.Push(q);
                    }
                }
            }

            return seen;
        }

        /// <summary>Every reachable object is readable with its cookie; every node holds exactly the reachable ones.</summary>
        public async Task AssertHeapMatchesAsync()
        {
            HashSet<HeapPointer> reachable = Reachable();
            foreach (HeapPointer p in reachable)
            {
                byte[] word = await heap.Router.ReadAsync(p, 8);
                Assert.Equal(CookieTag | (uint)Objects.IndexOf(p), BitConverter.ToUInt64(word));
            }

            foreach ((int slot, string node) in NodeOfSlot)
            {
                long objects = await heap.Client.GetGrain<IGcNodeGrain>(node).FinishSweepAsync();
                Assert.Equal(reachable.Count(p => p.Slot == slot), objects);
            }
        }
    }

    private static async Task<(HeapCluster Heap, Model Model, string[] Nodes)> StartAsync(
        Action<ClusterHeap.Grains.ClusterHeapOptions>? configure = null, GcMode mode = GcMode.StopTheWorld)
    {
        HeapCluster heap = await HeapCluster.StartAsync(3, (_, o) =>
        {
            o.GcPercent = -1;   // cycles only when a test asks (the pacer test turns it on)
            o.GcMode = mode;
            configure?.Invoke(o);
        });
        var model = new Model(heap, heap.Client);
        NodeInfo[] nodes = await heap.NodesAsync();
        foreach (NodeInfo n in nodes)
        {
            model.NodeOfSlot[n.Slot] = n.Name;
        }

        await model.StartLeaseAsync();
        return (heap, model, [.. nodes.Select(n => n.Name)]);
    }

    private static ICentralGcGrain Gc(HeapCluster heap) => heap.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public async Task ACrossNodeGarbageCycleIsReclaimedWhileARootedCrossNodeChainSurvives(GcMode mode)
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync(mode: mode);
        await using HeapCluster _ = heap;
        HeapPointer a = await m.NewAsync(nodes[0]), b = await m.NewAsync(nodes[1]), c = await m.NewAsync(nodes[2]);
        await m.LinkAsync(a, 0, b);
        await m.LinkAsync(b, 0, c);
        await m.LinkAsync(c, 0, a);
        HeapPointer x = await m.NewAsync(nodes[0]), y = await m.NewAsync(nodes[1]), z = await m.NewAsync(nodes[2]);
        await m.LinkAsync(x, 3, y);
        await m.LinkAsync(y, 6, z);
        foreach (HeapPointer p in new[] { a, b, c, y, z })
        {
            await m.ReleaseAsync(p);
        }

        ClusterGcCycle cycle = await Gc(heap).CollectAsync();

        Assert.Equal(3, m.Reachable().Count);
        await m.AssertHeapMatchesAsync();
        Assert.Equal(3, cycle.PerNode.Length);
        Assert.Equal(3, cycle.MarkedObjects);
        Assert.True(cycle.Batches >= 2, $"x→y and y→z cross nodes: at least two batches, saw {cycle.Batches}");
        Assert.Matches(@"^gc 1 @\d+\.\d{3}s \d+%: [\d.]+\+[\d.]+\+[\d.]+ ms clock, .* MB goal, 3 nodes \(forced\)$", cycle.Trace);
        Assert.Equal(mode, cycle.Mode);
    }

    [Theory]
    [InlineData(GcMode.StopTheWorld)]
    [InlineData(GcMode.Concurrent)]
    public async Task RandomGraphsWithCrossNodePointersKeepExactlyTheReachableObjectsCycleAfterCycle(GcMode mode)
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync(mode: mode);
        await using HeapCluster _ = heap;
        var random = new Random(11);
        for (int round = 0; round < 4; round++)
        {
            for (int i = 0; i < 60; i++)
            {
                await m.NewAsync(nodes[random.Next(nodes.Length)]);
            }

            List<HeapPointer> live = [.. m.Reachable()];
            for (int i = 0; i < 120; i++)
            {
                HeapPointer from = live[random.Next(live.Count)];
                HeapPointer to = random.Next(8) == 0 ? HeapPointer.Null : live[random.Next(live.Count)];
                await m.LinkAsync(from, random.Next(7), to);
            }

            foreach (HeapPointer p in m.Roots.Where(_ => random.Next(10) < 8).ToArray())
            {
                await m.ReleaseAsync(p);
            }

            await Gc(heap).CollectAsync();
            await m.AssertHeapMatchesAsync();
            foreach (HeapPointer dead in m.Objects.Except(m.Reachable()).ToArray())
            {
                m.Links.Remove(dead);                 // reclaimed: the model forgets it (pointers to it dangle)
                m.Objects[m.Objects.IndexOf(dead)] = HeapPointer.Null;
            }
        }
    }

    [Fact]
    public async Task DanglingPointersAreCountedAndSkippedAndInteriorPointersKeepTheirObject()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync();
        await using HeapCluster _ = heap;
        HeapPointer holder = await m.NewAsync(nodes[0]);
        HeapPointer freed = await m.NewAsync(nodes[1]);
        HeapPointer inner = await m.NewAsync(nodes[2]);
        await m.LinkAsync(holder, 0, freed);
        await m.LinkAsync(holder, 1, inner.Offset(24));        // interior
        await heap.Router.FreeAsync(freed);                      // an explicit free drops its root too
        m.Roots.Remove(freed);
        m.Links.Remove(freed);
        await m.ReleaseAsync(inner);

        ClusterGcCycle cycle = await Gc(heap).CollectAsync();

        // The freed object, plus each scanned object's cookie word: a pointer word that leads nowhere is dangling too.
        Assert.Equal(1 + 2, cycle.PerNode.Sum(n => n.Dangling));
        Assert.Equal(1, cycle.PerNode.Sum(n => n.Interior));
        m.Links[holder][1] = inner;                              // the model follows the interior pointer to its object
        await m.AssertHeapMatchesAsync();
    }

    [Fact]
    public async Task LinkRefusesAScalarWordAMisalignedWordAndAWordOutsideAnyObject()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync();
        await using HeapCluster _ = heap;
        HeapPointer scalar = await heap.MCache(nodes[0]).MallocAsync(ObjectSize, ObjectKind.Noscan);
        HeapPointer target = await m.NewAsync(nodes[1]);
        IGcNodeGrain gc = m.GcOf(scalar);

        ClusterHeapException e1 = await Assert.ThrowsAnyAsync<ClusterHeapException>(() => gc.LinkAsync(scalar.Offset(8), target));
        Assert.Contains("scalar word", e1.Message);
        HeapPointer pointerObject = await m.NewAsync(nodes[0]);
        ClusterHeapException e2 = await Assert.ThrowsAnyAsync<ClusterHeapException>(() => gc.LinkAsync(pointerObject.Offset(12), target));
        Assert.Contains("aligned", e2.Message);
        await Assert.ThrowsAnyAsync<ClusterHeapException>(() => gc.LinkAsync(pointerObject.Offset(ObjectSize), target));
        byte[] untouched = await heap.Router.ReadAsync(scalar, ObjectSize);
        Assert.All(untouched, b => Assert.Equal(0, b));
    }

    [Fact]
    public async Task AClientWhoseLeaseExpiresLosesItsRootsAndOneThatRenewsKeepsThem()
    {
        (HeapCluster heap, Model keeper, string[] nodes) = await StartAsync(o => o.ClientLease = TimeSpan.FromSeconds(2));
        await using HeapCluster _ = heap;
        // The quitter is another client: a silo's hosted client (its calls carry that silo's client id).
        Model quitter = keeper.OnHostedClient(0);

        ClientLease lease = await quitter.StartLeaseAsync();
        Assert.NotEqual(keeper.Client, quitter.Client);
        for (int i = 0; i < 6; i++)
        {
            await keeper.NewAsync(nodes[i % 3]);
            await quitter.NewAsync(nodes[i % 3]);
        }

        // The quitter stops renewing; the keeper renews at its period until the quitter's lease has run out.
        while (DateTime.UtcNow <= lease.Expires)
        {
            await keeper.StartLeaseAsync();
            await Task.WhenAny(Task.Delay(lease.RenewEvery), Task.Delay(lease.Expires - DateTime.UtcNow + TimeSpan.FromMilliseconds(50)));
        }

        await keeper.StartLeaseAsync();
        await Gc(heap).CollectAsync();

        Assert.Equal(0, await quitter.GcOf(quitter.Objects[0]).CountRootsAsync(quitter.Client));
        await keeper.AssertHeapMatchesAsync();   // exactly the keeper's six: the quitter's are gone
    }

    [Fact]
    public async Task AClientThatNeverTookALeaseKeepsItsObjectsThroughACycleOnceTheCoordinatorDropsUnknownClients()
    {
        (HeapCluster heap, Model keeper, string[] nodes) = await StartAsync(o => o.ClientLease = TimeSpan.FromSeconds(2));
        await using HeapCluster _ = heap;
        // A connection without ClientRootLease (a silo's hosted client here): its mallocs are rooted under its id, which
        // no lease names. Once the coordinator has been up a whole lease term it drops the roots of clients it does not
        // know that held a lease; this one never held one, so it keeps them (it can only release or free them).
        Model unleased = keeper.OnHostedClient(1);

        for (int i = 0; i < 6; i++)
        {
            await unleased.NewAsync(nodes[i % 3]);
        }

        ClientLease lease = await keeper.StartLeaseAsync();   // the coordinator is older than this lease
        while (DateTime.UtcNow <= lease.Expires)
        {
            await Task.WhenAny(Task.Delay(lease.RenewEvery), Task.Delay(lease.Expires - DateTime.UtcNow + TimeSpan.FromMilliseconds(50)));
            await keeper.StartLeaseAsync();
        }

        await Gc(heap).CollectAsync();

        await unleased.AssertHeapMatchesAsync();   // all six, each with its cookie
    }

    [Fact]
    public async Task ANodeKilledMidCycleAbortsItAndTheNextCycleCompletesWithNothingReachableLost()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync();
        await using HeapCluster _ = heap;
        HeapPointer a = await m.NewAsync(nodes[0]), b = await m.NewAsync(nodes[1]);
        HeapPointer victimObject = await m.NewAsync(nodes[2]);
        await m.LinkAsync(a, 0, b);
        await m.ReleaseAsync(b);
        await m.LinkAsync(a, 1, victimObject);
        InProcessSiloHandle holder = heap.Cluster.Silos.Single(s => s.Name == nodes[0]);
        InProcessSiloHandle victim = heap.Cluster.Silos.Single(s => s.Name == nodes[2]);
        GcNode holderGc = heap.Cluster.GetSiloServiceProvider(holder.SiloAddress).GetRequiredService<GcNode>();
        var marked = new TaskCompletionSource();
        var release = new TaskCompletionSource();
        holderGc.AfterRootsMarked = async _ =>
        {
            holderGc.AfterRootsMarked = null;
            marked.TrySetResult();
            await release.Task;
        };
        Task<string> aborted = holderGc.NextAbort;

        Task<ClusterGcCycle> collect = Gc(heap).CollectAsync();
        await marked.Task.WaitAsync(TimeSpan.FromSeconds(60));
        await heap.KillAndReclaimAsync(victim);
        release.TrySetResult();

        string reason = await aborted.WaitAsync(TimeSpan.FromSeconds(60));
        ClusterGcCycle next = await collect.WaitAsync(TimeSpan.FromSeconds(120));
        Assert.False(string.IsNullOrEmpty(reason));
        Assert.Equal(2, next.PerNode.Length);
        Assert.True((await Gc(heap).GetGcStatusAsync()).Aborted >= 1);
        m.Links.Remove(victimObject);
        m.Roots.Remove(victimObject);
        m.NodeOfSlot.Remove(victimObject.Slot);
        m.Links[a][1] = HeapPointer.Null;
        await m.AssertHeapMatchesAsync();
        Assert.Equal(2, next.MarkedObjects);
    }

    [Fact]
    public async Task TheCentralHeapsSiloKilledMidCycleAbortsEveryNodesPartAndANewCoordinatorCompletesTheNext()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync();
        await using HeapCluster _ = heap;
        string coordinator = (await Gc(heap).GetGcStatusAsync()).Coordinator;
        InProcessSiloHandle central = heap.Cluster.Silos.Single(s => s.SiloAddress.ToString() == coordinator);
        string[] survivors = [.. nodes.Where(n => n != central.Name)];
        HeapPointer a = await m.NewAsync(survivors[0]), b = await m.NewAsync(survivors[1]);
        await m.LinkAsync(a, 0, b);
        await m.ReleaseAsync(b);
        InProcessSiloHandle holder = heap.Cluster.Silos.Single(s => s.Name == survivors[0]);
        GcNode holderGc = heap.Cluster.GetSiloServiceProvider(holder.SiloAddress).GetRequiredService<GcNode>();
        var marked = new TaskCompletionSource();
        var gates = new TaskCompletionSource();
        holderGc.AfterRootsMarked = async _ =>
        {
            holderGc.AfterRootsMarked = null;
            marked.TrySetResult();
            await gates.Task;
        };
        Task<string> aborted = holderGc.NextAbort;

        Task<ClusterGcCycle> interrupted = Gc(heap).CollectAsync();
        await marked.Task.WaitAsync(TimeSpan.FromSeconds(60));
        IClusterMembershipService membership = heap.Cluster.GetSiloServiceProvider(holder.SiloAddress).GetRequiredService<IClusterMembershipService>();
        Task dead = HeapCluster.WaitForDeadAsync(membership, central.SiloAddress);
        await heap.Cluster.KillSiloAsync(central);
        await dead;
        // The holder's watchdog saw its coordinator's silo leave, or (an in-process kill stops the silo, which says so)
        // the dying coordinator saw its own silo leave the cycle and aborted first.
        string reason = await aborted.WaitAsync(TimeSpan.FromSeconds(60));
        gates.TrySetResult();
        await heap.CentralHeap.NodeDiedAsync(central.SiloAddress);
        await heap.Router.RefreshAsync();

        Assert.True(reason.Contains("coordinator") || reason.Contains($"node {central.Name} left"), reason);
        await Assert.ThrowsAnyAsync<Exception>(() => interrupted);   // its coordinator died with the silo
        // The new coordinator knows no client until it renews; a live client renews every period (ClientRootLease).
        await m.StartLeaseAsync();
        ClusterGcCycle next = await Gc(heap).CollectAsync();
        Assert.Equal(2, next.PerNode.Length);
        foreach (int slot in m.NodeOfSlot.Keys.ToArray())
        {
            if (!survivors.Contains(m.NodeOfSlot[slot]))
            {
                m.NodeOfSlot.Remove(slot);
            }
        }

        try
        {
            await m.AssertHeapMatchesAsync();
        }
        catch (Exception e)
        {
            throw new Xunit.Sdk.XunitException($"{e.Message}\nnext: {next.Trace}\n{string.Join("\n", next.PerNode.Select(n => n.ToString()))}\na={a} b={b} nodes={string.Join(",", (await heap.NodesAsync()).Select(n => $"{n.Name}:{n.Slot}g{n.Generation}"))}");
        }
    }

    [Fact]
    public async Task PointersMovedBetweenNodesWhileAConcurrentMarkRunsLoseNothingReachable()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync(mode: GcMode.Concurrent);
        await using HeapCluster _ = heap;
        // Three holders (rooted), one per node, and a pool of objects reachable only through them.
        HeapPointer[] holders = [await m.NewAsync(nodes[0]), await m.NewAsync(nodes[1]), await m.NewAsync(nodes[2])];
        var pool = new List<HeapPointer>();
        for (int i = 0; i < 18; i++)
        {
            HeapPointer p = await m.NewAsync(nodes[i % 3]);
            await m.LinkAsync(holders[i % 3], i / 3, p);
            await m.ReleaseAsync(p);
            pool.Add(p);
        }

        var random = new Random(5);
        for (int round = 0; round < 4; round++)
        {
            Task<ClusterGcCycle> cycle = Gc(heap).CollectAsync();
            // While the cycle runs: move pointers from one holder to another, clearing the old word after the new one is
            // written (Go's classic lost-object race: only the deletion barrier keeps a moved object alive).
            int moves = 0;
            while (!cycle.IsCompleted || moves < 6)
            {
                int from = random.Next(3), word = random.Next(6);
                HeapPointer moved = m.Links[holders[from]][word];
                if (moved.IsNull)
                {
                    continue;
                }

                int to = (from + 1 + random.Next(2)) % 3;
                int free = Array.FindIndex(m.Links[holders[to]], q => q.IsNull);
                if (free < 0)
                {
                    continue;
                }

                await m.LinkAsync(holders[to], free, moved);
                await m.LinkAsync(holders[from], word, HeapPointer.Null);
                moves++;
            }

            await cycle;
            await Gc(heap).CollectAsync();          // garbage made during a cycle goes by the next one
            await m.AssertHeapMatchesAsync();
        }
    }

    [Fact]
    public async Task ANodeThatHasCutRunsItsMutatorsBeforeAnotherNodeStopsAndAnObjectMovedBetweenThemSurvives()
    {
        (long onLateNode, long reachableThere) = await MoveAcrossTheCutAsync(breakBarrier: false);
        Assert.Equal(reachableThere, onLateNode);
    }

    [Fact]
    public async Task WithoutTheWriteBarrierOnTheNodeThatHasCutTheObjectMovedAcrossTheCutIsLost()
    {
        // The control of the test above: the same moves, the barrier off on the node that has cut. Only its insertion
        // half could have shaded the object: the node not yet cut deleted the old pointer with no barrier, and the new
        // holder was born marked, so the marker never scans it.
        (long onLateNode, long reachableThere) = await MoveAcrossTheCutAsync(breakBarrier: true);
        Assert.Equal(reachableThere - 1, onLateNode);
    }

    /// <summary>
    /// A concurrent cycle's cut is each node's own (docs/DESIGN.md §12, "The cut"). The late node's stop is held before
    /// it closes its gate; the early node has cut and runs its mutators meanwhile. Between them, object x (on the late
    /// node) moves: its new holder is a fresh object on the early node (born marked), then the late node's old pointer to
    /// it is cleared. Returns the late node's HeapObjects after the cycle and the count the model says is reachable there.
    /// </summary>
    private static async Task<(long OnLateNode, long ReachableThere)> MoveAcrossTheCutAsync(bool breakBarrier)
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync(mode: GcMode.Concurrent);
        await using HeapCluster _ = heap;
        var generous = TimeSpan.FromSeconds(60);
        string early = nodes[0], late = nodes[1];
        HeapPointer holder = await m.NewAsync(late), x = await m.NewAsync(late);
        await m.LinkAsync(holder, 0, x);
        await m.ReleaseAsync(x);                     // x: reachable only through holder's word 0

        IServiceProvider earlySilo = heap.Cluster.GetSiloServiceProvider(heap.Cluster.Silos.Single(s => s.Name == early).SiloAddress);
        GcNode earlyGc = earlySilo.GetRequiredService<GcNode>();
        GcNode lateGc = heap.Cluster.GetSiloServiceProvider(heap.Cluster.Silos.Single(s => s.Name == late).SiloAddress).GetRequiredService<GcNode>();
        var earlyCut = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var lateHeld = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var moved = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        earlyGc.AfterRootsMarked = _ =>
        {
            earlyGc.AfterRootsMarked = null;
            earlyCut.TrySetResult();                 // its snapshot is taken; its gate opens when this returns
            return Task.CompletedTask;
        };
        lateGc.BeforeStop = async _ =>
        {
            lateGc.BeforeStop = null;
            lateHeld.TrySetResult();
            await moved.Task;
        };
        if (breakBarrier)
        {
            earlySilo.GetRequiredService<ClusterHeap.Grains.Node.HeapNodeService>().Heap.DebugBreak = ClusterHeap.Heap.GcDebugBreak.SkipWriteBarrier;
        }

        Task<ClusterGcCycle> collect = Gc(heap).CollectAsync();
        await Task.WhenAll(earlyCut.Task, lateHeld.Task).WaitAsync(generous);
        // The early node runs its mutators while the late one has not stopped: with one pause 1 for the whole cluster
        // these calls would wait at the early node's gate for the late node's cut, which waits for them.
        HeapPointer fresh = await m.NewAsync(early).WaitAsync(generous);
        await m.LinkAsync(fresh, 0, x).WaitAsync(generous);                 // barriered on the early node: x is shaded
        await m.LinkAsync(holder, 0, HeapPointer.Null).WaitAsync(generous); // the late node, not cut: no barrier
        moved.TrySetResult();
        await collect.WaitAsync(generous);

        long onLate = await heap.Client.GetGrain<IGcNodeGrain>(late).FinishSweepAsync();
        if (!breakBarrier)
        {
            await m.AssertHeapMatchesAsync();
        }

        return (onLate, m.Reachable().Count(p => m.NodeOfSlot[p.Slot] == late));
    }

    [Fact]
    public async Task ThePacerStartsACycleWhenANodeReachesItsShareOfTheGoal()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync(o => o.GcPercent = 100);
        await using HeapCluster _ = heap;
        Task<ClusterGcCycle> first = Gc(heap).WaitForCycleAsync(0);
        long allocated = 0;
        while (!first.IsCompleted && allocated < (64L << 20))
        {
            MallocBatchResult r = await heap.MCache(nodes[0]).MallocBatchAsync(256, 1024, ObjectKind.Pointer);
            Assert.Null(r.Error);
            await heap.Client.GetGrain<IGcNodeGrain>(nodes[0]).ReleaseRootsAsync(m.Client, r.Pointers);
            allocated += 256 * 1024;
        }

        ClusterGcCycle cycle = await first.WaitAsync(TimeSpan.FromSeconds(60));
        Assert.False(cycle.Forced);
        GcNodeCycle node0 = cycle.PerNode.Single(n => n.Node == nodes[0]);
        Assert.True(node0.HeapLiveBefore >= ClusterHeap.Heap.GcPacer.DefaultHeapMinimum,
            $"the first goal is Go's heap minimum (4 MiB at GOGC=100): the cycle started at heap_live {node0.HeapLiveBefore}");
        Assert.True(allocated < (16L << 20), $"the cycle should start soon after 4 MiB, started after {allocated >> 20} MiB");
    }

    [Fact]
    public async Task AnAllocationAtTheLimitWaitsForACycleAndFailsOnlyWhenTheCycleFreedTooLittle()
    {
        (HeapCluster heap, Model m, string[] nodes) = await StartAsync(o =>
        {
            o.ClusterMemoryLimit = 24L << 20;
            o.GrantChunk = 4L << 20;
        });
        await using HeapCluster _ = heap;
        // Garbage well past the limit: every time the limit is hit, a cycle frees the garbage and the malloc goes on.
        for (int i = 0; i < 48; i++)
        {
            HeapPointer big = await heap.MCache(nodes[0]).MallocAsync(1L << 20, ObjectKind.Pointer);
            Assert.Equal(1, await m.GcOf(big).ReleaseRootsAsync(m.Client, [big]));   // at its owner: a full node's large object may live elsewhere
        }

        long cyclesBefore = (await Gc(heap).GetGcStatusAsync()).NumGC;
        Assert.True(cyclesBefore >= 1, "48 MiB of garbage under a 24 MiB limit needs at least one cycle");
        // Now keep everything rooted: the limit is reached, a cycle runs, frees nothing, and the malloc fails.
        ClusterOutOfMemoryException oom = await Assert.ThrowsAsync<ClusterOutOfMemoryException>(async () =>
        {
            for (int i = 0; i < 64; i++)
            {
                await heap.MCache(nodes[0]).MallocAsync(1L << 20, ObjectKind.Pointer);
            }
        });
        Assert.True((await Gc(heap).GetGcStatusAsync()).NumGC > cyclesBefore, "out of memory only after a cycle: " + oom.Message);
    }
}
