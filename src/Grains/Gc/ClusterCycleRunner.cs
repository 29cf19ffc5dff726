using System.Diagnostics;
using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>A node taking part in a cycle.</summary>
internal sealed record GcTarget(string Name, SiloAddress Silo, int Slot, ushort Generation);

/// <summary>
/// A cycle that could not finish; every node's part was aborted (nothing swept on its evidence). <see cref="Suspects"/>
/// are the nodes it failed on (a call failed or timed out, or the node's silo left): the next cycle waits until
/// membership has decided about them.
/// </summary>
internal sealed class GcAbortedException(string reason, IReadOnlyList<GcTarget>? suspects = null) : Exception(reason)
{
    public IReadOnlyList<GcTarget> Suspects { get; } = suspects ?? [];
}

/// <summary>What a finished cycle measured.</summary>
internal sealed record CycleOutcome(GcNodeCycle[] PerNode, double StopMs, double MarkMs, double RestartMs, long Batches, long Waves, GcCycleParts? Parts = null);

/// <summary>
/// One cycle over the heap node grains, driven by the central heap (docs/DESIGN.md §12). Stop the world:
/// <code>
///   sweep    every node finishes the last cycle's sweep, mutators running (Go's gcStart)     (before the pause)
///   stop     every node closes its gate and waits until no client call is in flight          (all nodes at once)
///   mark     every node opens a mark session, drops dead clients' roots, marks from its roots;
///            foreign marks go node → node in one-way batches, each shaded where it lands and
///            what it finds elsewhere sent on
///   detect   waves of counter reads until two waves agree and Σ sent = Σ received            (Mattern's four counters)
///   restart  every node finishes its session (the sweep starts there) and opens its gate; once every node has,
///            each queues its background sweeper (one-way)
/// </code>
/// Concurrent: the same sweep and restart around a mark that runs beside the mutators, with one pause of the cluster's:
/// <code>
///   cut      every node on its own: closes its gate, drains, opens its session (roots shaded as a snapshot, barrier
///            on, allocation born marked) and opens its gate again; no node waits for another's cut        (pause 1)
///   mark     waves of mark steps on every node, mutators running, until two waves agree and all ran dry
///   stop     every node closes its gate and takes a termination step, in one call; waves until quiet  (pause 2)
/// </code>
/// Any failure before restart — a node's call failing or timing out, a node leaving membership, a node reporting a
/// failed step, termination not reached in time — aborts every node's session: all marks are dropped and nothing is
/// swept, so no object is ever freed on the evidence of an incomplete mark.
/// <para>
/// Abort without waiting on the dead: before the stop every node must answer a ping (a node that cannot is not stopped
/// for; the world is never stopped by a cycle that cannot start); each step ends at its first failed call or the moment
/// a node's silo leaves membership (SiloDeparture), not when the slowest survivor answers; the abort goes to the nodes
/// still listed, interleaves with whatever step they are in (a stop waiting on its drain included: GcGate.CloseAsync)
/// and never waits on a node that left. Each node also aborts its own part when a silo of the cycle leaves (GcNode's
/// watchdog), so a survivor's part ends at membership's declaration even if the coordinator's abort never reaches it.
/// </para>
/// <para>
/// Termination: a node counts a batch as sent when it issues it and as received only at the end of the turn that shaded
/// it, after every batch that turn led to was counted as sent. A wave reads every node's (sent, received). If wave k
/// sees Σ received equal to wave k−1's Σ sent and Σ sent unchanged, every batch sent before wave k−1 ended was received
/// and led to nothing new: no batch is in flight and no node has work, so the mark is complete (Mattern 1987, the
/// four-counter method; counting needs no extra message per batch).
/// </para>
/// </summary>
internal sealed class ClusterCycleRunner(IGrainFactory grains, IClusterMembershipService membership, TimeSpan callTimeout)
{
    private GcTarget[] _nodes = [];          // the cycle's nodes, in the order of every step's calls
    private Task _departed = Task.CompletedTask;   // the current cycle's: completes when one of them leaves membership

    /// <summary>Runs cycle <paramref name="cycle"/>; <paramref name="pace"/> turns the nodes' marked bytes into their next triggers.</summary>
    public async Task<CycleOutcome> RunAsync(long cycle, SiloAddress coordinator, GcTarget[] nodes, GcMode mode,
        GrainId[] liveClients, GrainId[] droppedClients, bool dropUnknown, Func<long[], long[]> pace)
    {
        IGcNodeGrain[] g = [.. nodes.Select(n => grains.GetGrain<IGcNodeGrain>(n.Name))];
        _nodes = nodes;
        using var watch = new CancellationTokenSource();
        _departed = WatchDepartures(nodes, watch.Token);
        try
        {
            // Every node answers before any is stopped: a node that cannot (killed, not yet declared dead) fails the
            // cycle here, with the world running.
            await All(g.Select(n => n.GetCountersAsync(cycle)), "ping", PingTimeout);
        }
        catch (Exception e)
        {
            watch.Cancel();
            throw e as GcAbortedException ?? new GcAbortedException($"{e.GetType().Name}: {e.Message}");
        }

        var laps = new CycleLaps();
        long t0 = Stopwatch.GetTimestamp();
        try
        {
            await All(g.Select(n => n.SweepBeforeStopAsync(cycle)), "sweep");
            t0 = laps.Lap(CycleLaps.Step.Sweep);
            var plan = new GcMarkPlan(cycle, [.. nodes.Select(n => n.Slot)], [.. nodes.Select(n => n.Generation)], [.. nodes.Select(n => n.Name)],
                liveClients, droppedClients, dropUnknown, mode);
            GcMarkCounters[] counters;
            long waves = 0;
            long t1, t2;
            if (mode == GcMode.Concurrent)
            {
                // The cut: each node stops, takes its snapshot and resumes in one call, on its own — pause 1 is each node's,
                // and no node waits for another's (docs/DESIGN.md §12, "The cut"). Foreign marks reaching a node not cut yet
                // wait for its begin. Marking steps start once every node has cut.
                laps.CutStarts(t0);
                counters = await All(g.Select(n => n.StopAndBeginAsync(plan, coordinator)), "cut");
                t1 = laps.Lap(CycleLaps.Step.Cut);
                GcMarkCounters[] marked = counters;
                waves += await UntilQuietAsync(counters, () => All(g.Select(n => n.MarkStepAsync(cycle)), "mark step"), t1, last => marked = last);
                t2 = laps.Lap(CycleLaps.Step.Mark);
                laps.PauseStarts(t2, termination: true);
                // Pause 2, the cluster's: stop again with a termination step in the same call; the last mark wave is the
                // four-counter rule's first wave (mutators only queue work, they never send), so a quiet stop ends it in one
                // round.
                counters = await All(g.Select(n => n.StopAndTerminateAsync(cycle, coordinator)), "stop for termination");
                laps.Lap(CycleLaps.Step.Stop);
                waves += laps.Rounds(await UntilQuietAsync(counters, () => All(g.Select(n => n.TerminateAsync(cycle)), "terminate"), t2, last => counters = last,
                    (marked.Sum(c => c.Sent), marked.Sum(c => c.Received))));
                laps.Lap(CycleLaps.Step.Terminate);
            }
            else
            {
                laps.PauseStarts(t0, termination: false);
                await All(g.Select(n => n.StopWorldAsync(cycle, coordinator)), "stop");
                laps.Lap(CycleLaps.Step.Stop);
                counters = await All(g.Select(n => n.BeginMarkAsync(plan)), "mark");
                t1 = laps.Lap(CycleLaps.Step.Begin);
                waves += laps.Rounds(await UntilQuietAsync(counters, () => All(g.Select(n => n.GetCountersAsync(cycle)), "count"), t1, last => counters = last));
                t2 = laps.Lap(CycleLaps.Step.Terminate);
            }

            long tFinish = Stopwatch.GetTimestamp();
            long[] triggers = pace([.. counters.Select(c => c.Marked)]);
            laps.Finishing(Stopwatch.GetTimestamp());
            GcNodeCycle[] perNode = await All(g.Select((n, i) => n.FinishAsync(cycle, triggers[i])), "restart");
            long t3 = laps.Lap(CycleLaps.Step.Finish);
            laps.PauseEnds(t3);
            foreach (IGcNodeGrain n in g)
            {
                // Only now: a sweeper queued at a node's own finish took a core from the nodes still waiting for theirs.
                n.SweepInBackgroundAsync(cycle).Ignore();
            }

            GcCycleParts parts = laps.Parts();
            // Concurrent: pause 1 is the longest node's own cut; the mark is the cut round and the marking beside the
            // mutators; the restart is pause 2. Stop the world: stop, mark and restart are one pause.
            return mode == GcMode.Concurrent
                ? new CycleOutcome(perNode, perNode.Max(n => n.Parts?.CutMs ?? 0), Ms(t0, t2), Ms(t2, t3), counters.Sum(c => c.Sent), waves, parts)
                : new CycleOutcome(perNode, Ms(t0, t1), Ms(t1, tFinish), Ms(tFinish, t3), counters.Sum(c => c.Sent), waves, parts);
        }
        catch (Exception e)
        {
            GcAbortedException aborted = e as GcAbortedException ?? new GcAbortedException($"{e.GetType().Name}: {e.Message}");
            await AbortAllAsync(g, cycle, aborted.Message);
            throw aborted;
        }
        finally
        {
            watch.Cancel();
        }
    }

    /// <summary>
    /// Waves of <paramref name="wave"/> until the four-counter condition holds and every node reports Done: two waves
    /// with the same (Σ sent, Σ received) and Σ sent = Σ received. Returns the waves run; the last counters go to
    /// <paramref name="last"/>; <paramref name="before"/> is the sums of a wave that ended before
    /// <paramref name="counters"/> were asked for (the rule's first wave), if any.
    /// </summary>
    private async Task<long> UntilQuietAsync(GcMarkCounters[] counters, Func<Task<GcMarkCounters[]>> wave, long since,
        Action<GcMarkCounters[]>? last = null, (long Sent, long Received)? before = null)
    {
        long waves = 0;
        (long Sent, long Received) previous = before ?? (-1, -1);
        while (true)
        {
            ThrowIfFailed(counters);
            (long Sent, long Received) now = (counters.Sum(c => c.Sent), counters.Sum(c => c.Received));
            if (now.Sent == now.Received && now == previous && counters.All(c => c.Done))
            {
                last?.Invoke(counters);
                return waves;
            }

            if (Stopwatch.GetElapsedTime(since) > callTimeout)
            {
                throw new GcAbortedException($"the mark did not terminate within {callTimeout} (sent {now.Sent}, received {now.Received})");
            }

            ThrowIfLeft();
            previous = now;
            waves++;
            counters = await wave();
        }
    }

    private static double Ms(long from, long to) => Stopwatch.GetElapsedTime(from, to).TotalMilliseconds;

    /// <summary>How long a node may take to answer the ping before the stop: an answering node replies in milliseconds.</summary>
    private TimeSpan PingTimeout => callTimeout / 5;

    private Task<T[]> All<T>(IEnumerable<Task<T>> calls, string step, TimeSpan? timeout = null) => StepAsync(calls.ToArray(), step, timeout ?? callTimeout);

    private Task All(IEnumerable<Task> calls, string step) =>
        StepAsync(calls.Select(async c => { await c; return true; }).ToArray(), step, callTimeout);

    /// <summary>
    /// One step: every node's call, in order of <see cref="_nodes"/>. Ends at the first failed call, at the departure of
    /// a node's silo, or after <paramref name="timeout"/> — never waiting for the other nodes' answers once the cycle
    /// cannot finish (the abort that follows interleaves with them).
    /// </summary>
    private async Task<T[]> StepAsync<T>(Task<T>[] calls, string step, TimeSpan timeout)
    {
        Task<T[]> all = Task.WhenAll(calls);
        var failed = new TaskCompletionSource<int>(TaskCreationOptions.RunContinuationsAsynchronously);
        for (int i = 0; i < calls.Length; i++)
        {
            int node = i;
            _ = calls[i].ContinueWith(t => failed.TrySetResult(node), CancellationToken.None,
                TaskContinuationOptions.NotOnRanToCompletion,
                TaskScheduler.Default);
        }

        Task first;
        try
        {
            first = await Task.WhenAny(all, failed.Task, _departed).WaitAsync(timeout);
        }
        catch (TimeoutException)
        {
            GcTarget[] silent = [.. _nodes.Where((_, i) => !calls[i].IsCompleted)];
            throw new GcAbortedException($"{string.Join(", ", silent.Select(n => n.Name))} did not answer the {step} step within {timeout}", silent);
        }

        if (first == all)
        {
            return await all;
        }

        if (first == failed.Task)
        {
            int i = await failed.Task;
            Exception e = calls[i].Exception?.GetBaseException() ?? new TaskCanceledException();
            throw new GcAbortedException($"node {_nodes[i].Name}'s {step} step failed: {e.GetType().Name}: {e.Message}", [_nodes[i]]);
        }

        ThrowIfLeft();
        throw new InvalidOperationException("a departure was reported without a departed node");
    }

    /// <summary>A task that completes when a node of the cycle leaves membership, and stays pending otherwise.</summary>
    private Task WatchDepartures(GcTarget[] nodes, CancellationToken cancellation)
    {
        var departed = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        _ = WatchAsync();
        return departed.Task;

        async Task WatchAsync()
        {
            try
            {
                await SiloDeparture.FirstGoneAsync(membership, [.. nodes.Select(n => n.Silo)], cancellation);
                departed.TrySetResult();
            }
            catch (OperationCanceledException)
            {
                // The cycle ended.
            }
        }
    }

    private static void ThrowIfFailed(GcMarkCounters[] counters)
    {
        if (counters.FirstOrDefault(c => c.Failure is not null) is { Failure: { } failure })
        {
            throw new GcAbortedException(failure);
        }
    }

    private void ThrowIfLeft()
    {
        ClusterMembershipSnapshot snapshot = membership.CurrentSnapshot;
        foreach (GcTarget n in _nodes)
        {
            if (snapshot.GetSiloStatus(n.Silo) != SiloStatus.Active)
            {
                throw new GcAbortedException($"node {n.Name} left the cluster ({snapshot.GetSiloStatus(n.Silo)})", [n]);
            }
        }
    }

    /// <summary>
    /// Aborts every node's part that can still hear it: nodes whose silo left are skipped (their part died with them).
    /// Each abort runs at once on its node, whatever step it is in, so the wait is short; a live node that still cannot
    /// be reached aborts itself (GcNode's watchdog: a silo of the cycle gone, or the coordinator silent too long).
    /// </summary>
    private async Task AbortAllAsync(IGcNodeGrain[] nodes, long cycle, string reason)
    {
        ClusterMembershipSnapshot snapshot = membership.CurrentSnapshot;
        try
        {
            await Task.WhenAll(nodes.Where((_, i) => !SiloDeparture.IsGone(snapshot.GetSiloStatus(_nodes[i].Silo))).Select(async n =>
            {
                try
                {
                    await n.AbortAsync(cycle, reason);
                }
                catch (Exception)
                {
                    // Unreachable: its watchdog aborts it.
                }
            })).WaitAsync(callTimeout);
        }
        catch (TimeoutException)
        {
            // Same: the unreachable node's watchdog aborts it.
        }
    }
}
