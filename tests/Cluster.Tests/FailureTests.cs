using ClusterHeap.Contracts;

namespace ClusterHeap.Cluster.Tests;

/// <summary>Killed and restarted silos: each test has its own cluster.</summary>
public sealed class FailureTests
{
    private static async Task<List<HeapPointer>> FillAsync(HeapCluster heap, string node, int batches)
    {
        var pointers = new List<HeapPointer>();
        for (var i = 0; i < batches; i++)
        {
            var batch = await heap.MCache(node).MallocBatchAsync(1024, 1024);
            Assert.Null(batch.Error);
            pointers.AddRange(batch.Pointers);
        }

        return pointers;
    }

    [Fact]
    public async Task KillingANodeReclaimsItsSlotGrantsAndLeases()
    {
        await using var heap = await HeapCluster.StartAsync(3, (name, o) => o.ArenaSize = name.EndsWith('2') ? 8L << 20 : HeapCluster.TestArena);
        var victimHandle = heap.Cluster.Silos.Single(s => s.Name.EndsWith('2'));
        var victim = await heap.NodeAsync(victimHandle.Name);
        await FillAsync(heap, victim.Name, 12); // the 8 MiB node must lease
        var before = await heap.Central.GetViewAsync();
        Assert.Contains(before.Leases, l => l.LesseeNode == victim.Name);

        await heap.KillAndReclaimAsync(victimHandle);

        var view = await heap.Central.GetViewAsync();
        Assert.DoesNotContain(view.Nodes, n => n.Silo == victimHandle.SiloAddress);
        Assert.DoesNotContain(view.Leases, l => l.LesseeNode == victim.Name || l.LenderNode == victim.Name);
        Assert.Equal(view.Nodes.Sum(n => n.Granted), view.TotalGranted);
        foreach (var node in view.Nodes)
        {
            var stats = await heap.Node(node.Name).GetStatsAsync();
            Assert.Equal(0, stats.ActiveLeasesLent);
            Assert.Equal(stats.Granted, node.Granted);
            var more = await heap.MCache(node.Name).MallocBatchAsync(512, 256);
            Assert.Null(more.Error);
        }

        var gone = await Assert.ThrowsAsync<NodeGoneException>(() => heap.Router.FreeAsync(HeapPointer.Create(victim.Generation, HeapPointer.HintOf(victim.Slot) + 64)));
        Assert.Equal(HeapError.UnknownSlot, gone.Error.Reason);
        await heap.AssertVerifiedAsync();
    }

    [Fact]
    public async Task KillingALenderRevokesItsLeasesAndTheLesseeLeasesElsewhere()
    {
        await using var heap = await HeapCluster.StartAsync(3, (name, o) => o.ArenaSize = name.EndsWith('2') ? 8L << 20 : HeapCluster.TestArena);
        var small = await heap.NodeAsync(heap.Cluster.Silos.Single(s => s.Name.EndsWith('2')).Name);
        await FillAsync(heap, small.Name, 12);
        var before = await heap.Central.GetViewAsync();
        var lease = before.Leases.First(l => l.LesseeNode == small.Name);
        var lenderHandle = heap.Cluster.Silos.Single(s => s.Name == lease.LenderNode);
        if (lenderHandle.SiloAddress == before.HostSilo)
        {
            // Keep this test about the lender: the central heap's own failover has its test below.
            lenderHandle = heap.Cluster.Silos.Single(s => s.SiloAddress != before.HostSilo && s.Name != small.Name);
        }

        await heap.KillAndReclaimAsync(lenderHandle);

        var view = await heap.Central.GetViewAsync();
        Assert.DoesNotContain(view.Leases, l => l.LenderNode == lenderHandle.Name);
        var smallState = await heap.Node(small.Name).GetStateAsync();
        Assert.DoesNotContain(smallState.LeasesHeld, l => l.LenderNode == lenderHandle.Name);
        var more = await FillAsync(heap, small.Name, 4); // keeps going through the surviving lender
        var alive = view.Nodes.Select(n => n.Slot).ToHashSet();
        Assert.All(more, p => Assert.Contains(p.Slot, alive));
        await heap.AssertVerifiedAsync();
    }

    [Fact]
    public async Task ARestartedSiloGetsANewGenerationAndOldPointersAreNodeGone()
    {
        await using var heap = await HeapCluster.StartAsync(2);
        var handle = heap.Cluster.Silos.Last();
        var old = await heap.NodeAsync(handle.Name);
        var pointer = await heap.MCache(old.Name).MallocAsync(100);
        var membership = Microsoft.Extensions.DependencyInjection.ServiceProviderServiceExtensions.GetRequiredService<Orleans.Runtime.IClusterMembershipService>(
            heap.Cluster.GetSiloServiceProvider(heap.Cluster.Silos.First().SiloAddress));
        var dead = HeapCluster.WaitForDeadAsync(membership, handle.SiloAddress);
        await heap.Cluster.RestartSiloAsync((Orleans.TestingHost.InProcessSiloHandle)handle);
        await dead;
        await heap.Central.NodeDiedAsync(handle.SiloAddress);
        await heap.Router.RefreshAsync();

        var nodes = await heap.NodesAsync();
        Assert.Equal(2, nodes.Length);
        Assert.Equal(2, nodes.Select(n => n.Slot).Distinct().Count());
        var restarted = nodes.Single(n => n.Name == old.Name);
        Assert.NotEqual(old.Generation, restarted.Generation);
        Assert.NotEqual(old.Silo, restarted.Silo);

        var error = await Assert.ThrowsAsync<NodeGoneException>(() => heap.Router.ReadAsync(pointer, 8));
        Assert.Contains(error.Error.Reason, new[] { HeapError.StaleGeneration, HeapError.UnknownSlot });
        var direct = await Assert.ThrowsAsync<NodeGoneException>(() => heap.Node(restarted.Name).FreeAsync(pointer));
        Assert.Equal(HeapErrorKind.NodeGone, direct.Error.Kind);

        var fresh = await heap.MCache(restarted.Name).MallocAsync(100);
        Assert.Equal(restarted.Generation, fresh.Generation);
        await heap.AssertVerifiedAsync();
    }

    [Fact]
    public async Task KillingTheCentralHeapsSiloRebuildsTheSameViewElsewhere()
    {
        await using var heap = await HeapCluster.StartAsync(3, (_, o) => o.ClusterMemoryLimit = 1L << 30);
        await heap.Central.SetMemoryLimitAsync(512L << 20);
        var nodes = await heap.NodesAsync();
        foreach (var node in nodes)
        {
            await FillAsync(heap, node.Name, 2);
        }

        var before = await heap.Central.GetViewAsync();
        var host = heap.Cluster.Silos.Single(s => s.SiloAddress == before.HostSilo);
        await heap.KillAndReclaimAsync(host);

        var after = await heap.Central.GetViewAsync();
        Assert.NotEqual(before.HostSilo, after.HostSilo);
        var survivors = before.Nodes.Where(n => n.Silo != host.SiloAddress).ToArray();
        Assert.Equal(survivors, after.Nodes);
        Assert.Equal(512L << 20, after.MemoryLimit);
        Assert.True(after.LastGeneration >= before.LastGeneration);
        foreach (var node in after.Nodes)
        {
            var more = await heap.MCache(node.Name).MallocBatchAsync(1024, 64);
            Assert.Null(more.Error);
            Assert.All(more.Pointers, p => Assert.Equal(node.Slot, p.Slot));
        }

        await heap.AssertVerifiedAsync();
    }
}
