using System.Diagnostics;
using ClusterHeap.Contracts;
using ClusterHeap.Grains.Gc;
using Microsoft.Extensions.DependencyInjection;
using Orleans.Runtime;
using Orleans.TestingHost;
using Xunit.Abstractions;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// A node dying in the middle of a paced cluster cycle (docs/DESIGN.md §12, "Abort"), on real silos with a workload
/// running on every node: the survivors' parts abort when membership declares the death — whatever step they are in, a
/// stop still waiting on a call in flight included — their mutators go on, the next cycle completes over the live
/// nodes, and nothing reachable is lost.
/// <para>
/// The bound: a survivor's abort must come within <see cref="AfterDeclaration"/> of the moment a survivor's membership
/// declared the victim dead (the declaration is the event the abort path waits for: it is when Orleans fails the calls
/// still waiting on the dead silo), and within <see cref="FromKill"/> of the kill. The first is what separates the
/// mechanism from its fallbacks: a coordinator that waited for its step to time out (NodeCallTimeout, 10 s) or a node
/// that waited for its watchdog (3 × NodeCallTimeout, 30 s) would miss it by seconds. The second, half the watchdog, is
/// the declaration itself (2 missed probes of 2 s, and the vote) with room for a loaded machine.
/// </para>
/// </summary>
public sealed class GcAbortTests(ITestOutputHelper output)
{
    private static readonly TimeSpan AfterDeclaration = TimeSpan.FromSeconds(3);
    private static readonly TimeSpan FromKill = TimeSpan.FromSeconds(15);
    private static readonly TimeSpan Generous = TimeSpan.FromSeconds(60);

    // The test client's calls that went out through the victim's gateway can wait for the client's 30 s response
    // timeout (CI saw a loop stall that way for the whole Generous bound): the loops bound each call, and the calls
    // after the kill are retried, until Generous.
    private static readonly TimeSpan CallBound = TimeSpan.FromSeconds(5);

    private static async Task PastLostGatewayAsync(Func<Task> call) => await PastLostGatewayAsync(async () =>
    {
        await call();
        return true;
    });

    private static async Task<T> PastLostGatewayAsync<T>(Func<Task<T>> call)
    {
        long start = Stopwatch.GetTimestamp();
        while (true)
        {
            try
            {
                return await call().WaitAsync(CallBound);
            }
            catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException
                && Stopwatch.GetElapsedTime(start) < Generous)
            {
                // Lost with the victim's gateway: the next attempt goes through a live one.
            }
        }
    }
    private const ulong CookieTag = 0xC0DEUL << 48;

    /// <summary>Where the survivor that holds the cycle up is when the victim dies.</summary>
    public enum Step
    {
        /// <summary>Stop-the-world: its stop waits for a gated call still in flight (its drain).</summary>
        StoppedWithACallInFlight,
        /// <summary>Stop-the-world: it has marked its roots and its mark step has not returned.</summary>
        Marking,
        /// <summary>Concurrent: pause 2's stop waits for a gated call in flight.</summary>
        Pause2WithACallInFlight,
    }

    /// <summary>Mallocs on every node that drop their roots at once: garbage that makes the pacer start cycles.</summary>
    private sealed class Workload
    {
        private readonly CancellationTokenSource _stop = new();
        private readonly List<Task> _loops = [];
        private readonly Lock _lock = new();
        private long _lostCalls;
        private readonly Dictionary<string, long> _ops = [];                                            // guarded by _lock
        private readonly List<(string Node, long Target, TaskCompletionSource Done)> _waiters = [];   // guarded by _lock
        private readonly Dictionary<string, Exception> _failed = [];                                   // guarded by _lock: loops that failed

        public Workload(HeapCluster heap, GrainId client, IEnumerable<string> nodes, string victim)
        {
            foreach (string node in nodes)
            {
                _loops.Add(Task.Run(async () =>
                {
                    try
                    {
                        await LoopAsync(heap, client, node, tolerateDeath: node == victim);
                    }
                    catch (Exception e)
                    {
                        Fail(node, e);   // a waiter on this node hears why at once, rather than timing out
                        throw;
                    }
                }));
            }
        }

        private void Fail(string node, Exception e)
        {
            using (_lock.EnterScope())
            {
                foreach ((string _, long _, TaskCompletionSource done) in _waiters.Where(w => w.Node == node))
                {
                    done.TrySetException(e);
                }

                _waiters.RemoveAll(w => w.Node == node);
                _failed[node] = e;
            }
        }

        /// <summary>Survivors' calls lost with the victim's gateway.</summary>
        public long LostCalls => Interlocked.Read(ref _lostCalls);

        /// <summary>Completes when <paramref name="node"/>'s loop has done <paramref name="more"/> objects more than now.</summary>
        public Task WhenMoreOps(string node, long more)
        {
            var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using (_lock.EnterScope())
            {
                if (_failed.TryGetValue(node, out Exception? failure))
                {
                    return Task.FromException(failure);
                }

                _waiters.Add((node, _ops.GetValueOrDefault(node) + more, done));
            }

            return done.Task;
        }

        /// <summary>Stops the loops; a survivor's loop that failed fails the test here.</summary>
        public async Task StopAsync()
        {
            _stop.Cancel();
            await Task.WhenAll(_loops);
        }

        private async Task LoopAsync(HeapCluster heap, GrainId client, string node, bool tolerateDeath)
        {
            IMCacheGrain mcache = heap.MCache(node);
            Dictionary<int, string> nodeOfSlot = [];
            while (!_stop.IsCancellationRequested)
            {
                try
                {
                    MallocBatchResult r = await mcache.MallocBatchAsync(32, 256, ObjectKind.Pointer).WaitAsync(CallBound);
                    // While the central heap moves (its silo was the victim) a refill that needs it returns what it
                    // allocated with Unavailable, and the caller retries (README, the data path): anything else fails.
                    Assert.True(r.Error is null || r.Error.Kind == HeapErrorKind.Unavailable, r.Error?.Message);
                    // Each pointer is rooted at its owner (a refill may have leased a span of another node).
                    int released = 0;
                    foreach (IGrouping<int, HeapPointer> owned in r.Pointers.GroupBy(p => p.Slot))
                    {
                        if (!nodeOfSlot.TryGetValue(owned.Key, out string? owner))
                        {
                            nodeOfSlot = (await heap.NodesAsync().WaitAsync(CallBound)).ToDictionary(n => n.Slot, n => n.Name);
                            owner = nodeOfSlot[owned.Key];
                        }

                        released += await heap.Client.GetGrain<IGcNodeGrain>(owner).ReleaseRootsAsync(client, [.. owned]).WaitAsync(CallBound);
                    }

                    Assert.Equal(r.Pointers.Length, released);
                    if (r.Error is not null)
                    {
                        Interlocked.Increment(ref _lostCalls);
                        continue;
                    }
                }
                catch (Exception) when (tolerateDeath)
                {
                    return;   // the victim's loop ends with its node
                }
                catch (Exception e) when (e is SiloUnavailableException or OrleansMessageRejectionException or TimeoutException)
                {
                    // The call went through the dying silo's gateway and was lost with it: the test client's connection, not
                    // the heap (the stress client watches membership to fail such calls early; this one waits them out).
                    Interlocked.Increment(ref _lostCalls);
                    continue;
                }

                using (_lock.EnterScope())
                {
                    long ops = _ops[node] = _ops.GetValueOrDefault(node) + 32;
                    foreach ((string _, long _, TaskCompletionSource done) in _waiters.Where(w => w.Node == node && ops >= w.Target))
                    {
                        done.TrySetResult();
                    }

                    _waiters.RemoveAll(w => w.Done.Task.IsCompleted);
                }
            }
        }
    }

    [Theory]
    [InlineData(Step.StoppedWithACallInFlight)]
    [InlineData(Step.Marking)]
    [InlineData(Step.Pause2WithACallInFlight)]
    public async Task ANodeKilledDuringAPacedCycleUnderAWorkloadIsAbortedByTheSurvivorsAtItsDeclarationAndTheNextCycleCompletes(Step step)
    {
        await using HeapCluster heap = await StartAsync(step == Step.Pause2WithACallInFlight ? GcMode.Concurrent : GcMode.StopTheWorld);
        string coordinator = (await Gc(heap).GetGcStatusAsync()).Coordinator;
        InProcessSiloHandle[] silos = [.. heap.Cluster.Silos];
        InProcessSiloHandle coordinatorSilo = silos.Single(s => s.SiloAddress.ToString() == coordinator);
        InProcessSiloHandle victim = silos.First(s => s != coordinatorSilo);
        InProcessSiloHandle holder = silos.Single(s => s != coordinatorSilo && s != victim);   // the survivor that holds the cycle up
        await RunKillScenarioAsync(heap, victim, holder, coordinatorSilo, step);
    }

    [Fact]
    public async Task TheCoordinatorsSiloKilledDuringAPacedCycleUnderAWorkloadIsAbortedByTheSurvivorsAtItsDeclarationAndANewCoordinatorCompletesTheNext()
    {
        await using HeapCluster heap = await StartAsync(GcMode.StopTheWorld);
        string coordinator = (await Gc(heap).GetGcStatusAsync()).Coordinator;
        InProcessSiloHandle[] silos = [.. heap.Cluster.Silos];
        InProcessSiloHandle victim = silos.Single(s => s.SiloAddress.ToString() == coordinator);
        InProcessSiloHandle[] survivors = [.. silos.Where(s => s != victim)];
        await RunKillScenarioAsync(heap, victim, survivors[0], survivors[1], Step.Marking);
    }

    private async Task RunKillScenarioAsync(HeapCluster heap, InProcessSiloHandle victim, InProcessSiloHandle holder,
        InProcessSiloHandle other, Step step)
    {
        GrainId client = (await Gc(heap).RenewClientAsync()).Client;   // the test client's connection, as the cluster knows it

        // What must survive: a rooted object on each survivor, the second reachable only through the first, and a
        // pointer from the first to an object on the victim (dangling once it dies).
        HeapPointer kept = await NewAsync(heap, holder.Name, 1), reached = await NewAsync(heap, other.Name, 2);
        HeapPointer onVictim = await NewAsync(heap, victim.Name, 3);
        await Link(heap, holder.Name, kept, 0, reached);
        await Link(heap, holder.Name, kept, 1, onVictim);
        Assert.Equal(1, await heap.Client.GetGrain<IGcNodeGrain>(other.Name).ReleaseRootsAsync(client, [reached]));

        GcNode holderGc = ServiceOf<GcNode>(heap, holder);
        GcNode otherGc = ServiceOf<GcNode>(heap, other);
        var caught = new TaskCompletionSource<long>(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        bool heldACall = false;
        var stops = new Dictionary<long, int>();
        switch (step)
        {
            case Step.Marking:
                holderGc.AfterRootsMarked = async cycle =>
                {
                    holderGc.AfterRootsMarked = null;
                    caught.TrySetResult(cycle);
                    await release.Task;
                };
                break;
            default:
                holderGc.BeforeStop = cycle =>
                {
                    // Pause 2 is a cycle's second stop on this node.
                    int stop = stops[cycle] = stops.GetValueOrDefault(cycle) + 1;
                    if (caught.Task.IsCompleted || stop != (step == Step.Pause2WithACallInFlight ? 2 : 1))
                    {
                        return Task.CompletedTask;
                    }

                    // A client call in flight as the gate closes (a real one could be waiting on the dying node): the stop
                    // waits for it to drain; the abort must not.
                    ValueTask entered = holderGc.Gate.EnterAsync();
                    Assert.True(entered.IsCompletedSuccessfully, "the gate is open before a stop closes it");
                    heldACall = true;
                    holderGc.BeforeStop = null;
                    caught.TrySetResult(cycle);
                    return Task.CompletedTask;
                };
                break;
        }

        var workload = new Workload(heap, client, heap.Cluster.Silos.Select(s => s.Name), victim.Name);
        long cycle = await caught.Task.WaitAsync(Generous);
        output.WriteLine($"victim {victim.Name} {victim.SiloAddress} (gateway {victim.GatewayAddress}), holder {holder.Name} {holder.SiloAddress}, other {other.Name} {other.SiloAddress}, coordinator {(await Gc(heap).GetGcStatusAsync()).Coordinator}; cycle {cycle}");
        Task<string> holderAborted = holderGc.NextAbort, otherAborted = otherGc.NextAbort;
        IClusterMembershipService witness = ServiceOf<IClusterMembershipService>(heap, holder);
        bool victimCoordinates = (await Gc(heap).GetGcStatusAsync()).Coordinator == victim.SiloAddress.ToString();
        Task<long> declared = HeapCluster.WaitForDeadAsync(witness, victim.SiloAddress).ContinueWith(t =>
        {
            t.GetAwaiter().GetResult();
            return Stopwatch.GetTimestamp();
        }, TaskScheduler.Default);
        long killedAt = Stopwatch.GetTimestamp();
        await heap.Cluster.KillSiloAsync(victim);

        // Both survivors drop the cycle within the bound, while the held call (if any) is still in flight.
        string[] reasons = await Task.WhenAll(holderAborted, otherAborted).WaitAsync(Generous);
        long abortedAt = Stopwatch.GetTimestamp();
        long declaredAt = await declared.WaitAsync(Generous);
        TimeSpan sinceDeclared = Stopwatch.GetElapsedTime(declaredAt, abortedAt), sinceKill = Stopwatch.GetElapsedTime(killedAt, abortedAt);
        Assert.True(sinceDeclared <= AfterDeclaration && sinceKill <= FromKill,
            $"cycle {cycle}: survivors aborted {sinceDeclared.TotalSeconds:0.0} s after the victim was declared dead, {sinceKill.TotalSeconds:0.0} s after the kill: {string.Join(" | ", reasons)}");
        Assert.All(reasons, r => Assert.DoesNotContain("silent", r));
        output.WriteLine($"{step}: survivors aborted {sinceDeclared.TotalSeconds:0.00} s after the declaration, {sinceKill.TotalSeconds:0.00} s after the kill: {string.Join(" | ", reasons)}");

        // Let the held step go on (a real call waiting on the dead node fails at the declaration); it changes nothing now.
        if (heldACall)
        {
            holderGc.Gate.Exit();
        }

        release.TrySetResult();
        await PastLostGatewayAsync(() => heap.CentralHeap.NodeDiedAsync(victim.SiloAddress));
        if (victimCoordinates)
        {
            // A new coordinator knows no client until it renews (a live client renews every period: ClientRootLease).
            await PastLostGatewayAsync(() => Gc(heap).RenewClientAsync());
        }

        await PastLostGatewayAsync(() => heap.Router.RefreshAsync());

        // Both survivors' gates opened and their mutators go on; the next paced cycle completes over the two of them.
        long numGC = (await PastLostGatewayAsync(() => Gc(heap).GetGcStatusAsync())).NumGC;
        await Task.WhenAll(workload.WhenMoreOps(holder.Name, 2000), workload.WhenMoreOps(other.Name, 2000)).WaitAsync(Generous);
        ClusterGcCycle next = await Gc(heap).WaitForCycleAsync(numGC).WaitAsync(Generous);
        Assert.Equal(2, next.PerNode.Length);
        output.WriteLine($"next cycle: {next.Trace}");
        await workload.StopAsync();
        output.WriteLine($"survivors' calls lost with the victim's gateway: {workload.LostCalls}");

        // Nothing reachable was lost: a forced cycle after the workload, then both objects read back their cookies.
        ClusterGcCycle last = await Gc(heap).CollectAsync();
        Assert.Equal(2, last.PerNode.Length);
        Assert.Equal(CookieTag | 1, BitConverter.ToUInt64(await heap.Router.ReadAsync(kept, 8)));
        Assert.Equal(CookieTag | 2, BitConverter.ToUInt64(await heap.Router.ReadAsync(reached, 8)));
    }

    private static async Task<HeapCluster> StartAsync(GcMode mode) => await HeapCluster.StartAsync(3, (_, o) =>
    {
        o.GcPercent = 100;                            // the default: paced cycles every 4 MiB or so of garbage
        o.GcMode = mode;
        o.ClientLease = TimeSpan.FromMinutes(10);     // the test client renews once
    });

    private static ICentralGcGrain Gc(HeapCluster heap) => heap.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

    private static T ServiceOf<T>(HeapCluster heap, SiloHandle silo) where T : notnull =>
        heap.Cluster.GetSiloServiceProvider(silo.SiloAddress).GetRequiredService<T>();

    private static async Task<HeapPointer> NewAsync(HeapCluster heap, string node, uint cookie)
    {
        HeapPointer p = await heap.MCache(node).MallocAsync(64, ObjectKind.Pointer);
        await heap.Router.WriteAsync(p, BitConverter.GetBytes(CookieTag | cookie));
        return p;
    }

    private static Task Link(HeapCluster heap, string node, HeapPointer from, int word, HeapPointer to) =>
        heap.Client.GetGrain<IGcNodeGrain>(node).LinkAsync(from.Offset(8 * (word + 1)), to);
}
