using System.Diagnostics;
using ClusterHeap.Contracts;
using ClusterHeap.Grains.Gc;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;
using GcMode = ClusterHeap.Contracts.GcMode;

namespace ClusterHeap.Grains.CentralHeap;

/// <summary>
/// The central heap as the cluster collector's coordinator (docs/DESIGN.md §12): client leases, the pacer, and the
/// cycles (Gc/ClusterCycleRunner.cs runs one). Every call here is <c>AlwaysInterleave</c>: a cycle waits for the nodes to
/// stop, and a node stops only when its in-flight mallocs are done, which may need a grant or a lease from this grain.
/// One cycle runs at a time (<c>_running</c>); callers that arrive meanwhile join it.
/// <para>
/// Pacer (GcPacer.cs's rules over the cluster): the heap goal is Σ marked × (1 + GOGC/100), at least 4 MiB × GOGC/100,
/// at most the cluster memory limit (GOMEMLIMIT); each node's trigger is what it marked plus an equal part of the room
/// the goal leaves above Σ marked, and it asks for a cycle when its heap_live reaches it (Go's shouldhelpgc).
/// </para>
/// <para>
/// Leases: a client renews here, once per client whatever the nodes. The table is not stored: a new activation knows no
/// client, so it drops no unknown client's roots until it has been up a whole lease term (every live client has renewed
/// by then); clients whose lease it saw end are dropped at once.
/// </para>
/// </summary>
public sealed partial class CentralHeapGrain : ICentralGcGrain
{
    private const int RecentCycles = 64;
    private const int Attempts = 3;                                              // cycles tried per run before it fails
    private static readonly TimeSpan FirstBackoff = TimeSpan.FromMilliseconds(250);   // wait after the first abort; doubles

    private readonly Dictionary<GrainId, DateTime> _clientLeases = [];   // a client is its connection's grain id
    private readonly HashSet<GrainId> _endedClients = [];
    private readonly Queue<ClusterGcCycle> _recentCycles = new();
    private readonly long _gcStartTicks = Stopwatch.GetTimestamp();
    private readonly DateTime _gcActivated = DateTime.UtcNow;
    private Task<ClusterGcCycle>? _running;
    private bool _runningForced;          // _running is a forced run (ForcedDeadline bounds it), not a paced one
    private TaskCompletionSource<ClusterGcCycle> _nextCycle = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private int? _gcPercent;
    private GcMode? _gcMode;
    private long _gcMarked, _numGc, _gcAborted, _lastCycleId;
    private double _gcPauseMs;   // Σ PauseMs: the time mutators were stopped
    private string? _lastAbort;
    private bool _pacing;                 // the running cycle took the nodes' triggers: a node's request now is for the next one
    private bool _pacedAgain;             // such a request came: run another cycle when this run ends
    private DateTime _quietUntil;         // a run failed: paced runs start no cycle before this (forced ones do)

    private int GcPercent => _gcPercent ??= _options.GcPercent;

    private GcMode GcMode => _gcMode ??= _options.GcMode;

    private long GcGoal => GcPacer.GoalFor(_gcMarked, GcPercent, _memoryLimit);

    /// <inheritdoc/>
    public Task<ClusterGcCycle> CollectAsync()
    {
        if (_running is null)
        {
            _runningForced = true;
            return _running = RunCyclesAsync(forced: true);
        }

        return _runningForced ? _running : JoinPacedAsync(_running);
    }

    /// <inheritdoc/>
    public Task RequestCycleAsync(string node)
    {
        if (!PacerOn)
        {
            return Task.CompletedTask;
        }

        if (_running is null)
        {
            StartPacedRun();
        }
        else if (_pacing)
        {
            // The running cycle already set this node's trigger and it reached it again: the node asks once per cycle,
            // so dropping this request would leave it without cycles for good.
            _pacedAgain = true;
        }

        return Task.CompletedTask;
    }

    private bool PacerOn => GcPercent >= 0 || _memoryLimit != long.MaxValue;

    private void StartPacedRun()
    {
        _runningForced = false;
        _running = RunCyclesAsync(forced: false);
        _running.Ignore();
    }

    /// <inheritdoc/>
    public async Task<ClusterGcCycle> WaitForCycleAsync(long number)
    {
        while (true)
        {
            if (_numGc > number && _recentCycles.Count > 0)
            {
                return _recentCycles.Last();
            }

            await _nextCycle.Task;
        }
    }

    /// <inheritdoc/>
    public Task<ClusterGcStatus> GetGcStatusAsync()
    {
        ExpireClients();
        return Task.FromResult(new ClusterGcStatus(GcMode, GcPercent, GcGoal, _gcMarked, _numGc, _gcAborted, _lastAbort,
            _clientLeases.Count, [.. _recentCycles], _silo.SiloAddress.ToString()));
    }

    /// <inheritdoc/>
    public Task SetGcPercentAsync(int percent)
    {
        _gcPercent = percent;
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task SetGcModeAsync(GcMode mode)
    {
        _gcMode = Enum.IsDefined(mode) ? mode : throw HeapError.InvalidArgument($"gc mode {(int)mode} is not one of {string.Join(", ", Enum.GetNames<GcMode>())}").ToException();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<ClientLease> RenewClientAsync()
    {
        GrainId client = CallingClient("renew a lease");
        DateTime expires = DateTime.UtcNow + _options.ClientLease;
        _clientLeases[client] = expires;
        _endedClients.Remove(client);
        return Task.FromResult(new ClientLease(client, expires, _options.ClientLease / 3));
    }

    /// <inheritdoc/>
    public Task EndClientAsync()
    {
        GrainId client = CallingClient("end a lease");
        if (_clientLeases.Remove(client))
        {
            _endedClients.Add(client);
        }

        return Task.CompletedTask;
    }

    /// <summary>The client this call came from (Gc/GcCaller.cs: the gate filter read the call's source).</summary>
    private static GrainId CallingClient(string what) => GcCaller.Client
        ?? throw HeapError.InvalidArgument($"only a client connection can {what}: a lease covers the roots of the client that holds it").ToException();

    private void ExpireClients()
    {
        DateTime now = DateTime.UtcNow;
        foreach (GrainId c in _clientLeases.Where(kv => kv.Value < now).Select(kv => kv.Key).ToArray())
        {
            _clientLeases.Remove(c);
            _endedClients.Add(c);
            LogClientExpired(_logger, c);
        }
    }

    /// <summary>
    /// Runs a cycle; an aborted one is followed by a new one over the nodes still live, up to <see cref="Attempts"/> in
    /// all. Between attempts the run waits until membership has decided about the nodes the abort names (each answers a
    /// ping, or its silo is declared gone: the next cycle's nodes are the live membership) and at least a backoff that
    /// doubles from <see cref="FirstBackoff"/>. A paced run that follows a failed run waits out the failed run's backoff
    /// first, so a node that keeps asking cannot stop the world over and over for cycles that cannot finish.
    /// <para>
    /// A forced run answers within its deadline (ForcedGcDeadline, below the caller's response timeout) with the reason
    /// it could not complete: its attempts' steps and mark are bounded by the time left, and it gives up when too little
    /// is left for another attempt. A node lost mid-way (its silo declared gone by the time the retry starts) restarts the
    /// deadline: the cycle over the survivors is expected to complete, and does not pay for the wait for membership. So
    /// the one wait a deadline does not cut short is for a node that neither answers a ping nor is declared dead yet
    /// (killed, not yet declared): the run is waiting for the declaration that lets the next attempt complete.
    /// </para>
    /// </summary>
    private async Task<ClusterGcCycle> RunCyclesAsync(bool forced)
    {
        await Task.Yield();   // never completes before _running is set (its finally clears it)
        try
        {
            if (!forced && DateTime.UtcNow < _quietUntil)
            {
                await Task.Delay(_quietUntil - DateTime.UtcNow);
            }

            var deadline = new ForcedDeadline(forced ? _options.ForcedGcDeadline : null);
            for (int attempt = 1; ; attempt++)
            {
                try
                {
                    return await RunCycleAsync(forced, deadline.Bound(_options.NodeCallTimeout));
                }
                catch (GcAbortedException e)
                {
                    if (attempt >= Attempts || !(forced || PacerOn) || (e.Suspects.Count == 0 && deadline.TooLateForAnother))
                    {
                        throw GiveUp(attempt, e, deadline);
                    }

                    TimeSpan backoff = Backoff(attempt);
                    LogRetry(_logger, attempt, e.Message, backoff.TotalMilliseconds, string.Join(", ", e.Suspects.Select(n => n.Name)));
                    await UntilDecidedAsync(e.Suspects, backoff);
                    ClusterMembershipSnapshot snapshot = _membership.CurrentSnapshot;
                    if (e.Suspects.Any(n => SiloDeparture.IsGone(snapshot.GetSiloStatus(n.Silo))))
                    {
                        deadline.Restart();
                    }
                    else if (deadline.TooLateForAnother)
                    {
                        throw GiveUp(attempt, e, deadline);
                    }
                }
            }
        }
        finally
        {
            _running = null;
            _pacing = false;
            if (_pacedAgain)
            {
                _pacedAgain = false;
                if (PacerOn)
                {
                    StartPacedRun();
                }
            }
        }
    }

    /// <summary>The run failed: paced runs keep quiet for a backoff; the caller reads why.</summary>
    private Exception GiveUp(int attempt, GcAbortedException last, ForcedDeadline deadline)
    {
        _quietUntil = DateTime.UtcNow + Backoff(attempt + 1);
        string within = deadline.Left != TimeSpan.MaxValue && deadline.TooLateForAnother
            ? $" in {deadline.Elapsed.TotalSeconds:0.0} s (a forced cycle answers within {_options.ForcedGcDeadline.TotalSeconds:0.#} s)"
            : "";
        return HeapError.Unavailable("a garbage collection cycle", $"aborted {attempt} times{within}; last: {last.Message}").ToException();
    }

    /// <summary>
    /// A forced call that found a paced run going: it waits for that run up to the forced deadline, then answers with
    /// what is known (the run goes on).
    /// </summary>
    private async Task<ClusterGcCycle> JoinPacedAsync(Task<ClusterGcCycle> paced)
    {
        try
        {
            return await paced.WaitAsync(_options.ForcedGcDeadline);
        }
        catch (TimeoutException)
        {
            throw HeapError.Unavailable("a garbage collection cycle",
                $"the paced cycle running did not complete within the forced cycle's deadline ({_options.ForcedGcDeadline}); last abort: {_lastAbort ?? "none"}").ToException();
        }
    }

    private TimeSpan Backoff(int attempt) => TimeSpan.FromTicks(Math.Min(FirstBackoff.Ticks << Math.Min(attempt - 1, 16), _options.NodeCallTimeout.Ticks));

    /// <summary>
    /// Waits at least <paramref name="backoff"/>, and until each of <paramref name="suspects"/> answers a ping or its silo
    /// is gone from membership (a killed silo is declared dead within a few probe timeouts), at most twice the node call
    /// timeout: a cycle over a node that can neither answer nor be declared dead would only abort again.
    /// </summary>
    private async Task UntilDecidedAsync(IReadOnlyList<GcTarget> suspects, TimeSpan backoff)
    {
        var pause = Task.Delay(backoff);
        using var bound = new CancellationTokenSource(_options.NodeCallTimeout * 2);
        await Task.WhenAll(suspects.Select(n => DecidedAsync(n, bound.Token)));
        await pause;
    }

    private async Task DecidedAsync(GcTarget node, CancellationToken bound)
    {
        Task gone = SiloDeparture.FirstGoneAsync(_membership, [node.Silo], bound);
        try
        {
            while (!gone.IsCompleted)
            {
                Task ping = GrainFactory.GetGrain<IGcNodeGrain>(node.Name).GetCountersAsync(0);
                if (await Task.WhenAny(gone, ping) == ping && ping.IsCompletedSuccessfully)
                {
                    return;
                }

                // The ping failed (a killed silo refuses connections before it is declared dead): try again shortly.
                await Task.WhenAny(gone, Task.Delay(FirstBackoff, bound));
                ping.Ignore();
            }
        }
        finally
        {
            gone.Ignore();
        }
    }

    /// <summary>One attempt; <paramref name="bound"/> bounds each of its steps and its mark's termination.</summary>
    private async Task<ClusterGcCycle> RunCycleAsync(bool forced, TimeSpan bound)
    {
        ExpireClients();
        ClusterMembershipSnapshot snapshot = _membership.CurrentSnapshot;
        GcTarget[] nodes = [.. _nodes.Values
            .Where(n => snapshot.GetSiloStatus(n.Silo) == SiloStatus.Active)
            .OrderBy(n => n.Slot)
            .Select(n => new GcTarget(n.Name, n.Silo, n.Slot, n.Generation))];
        if (nodes.Length == 0)
        {
            throw new GcAbortedException("no live node");
        }

        long cycle = _lastCycleId = Math.Max(_lastCycleId + 1, DateTime.UtcNow.Ticks);
        GrainId[] live = [.. _clientLeases.Keys];
        GrainId[] dropped = [.. _endedClients];
        bool dropUnknown = DateTime.UtcNow - _gcActivated >= _options.ClientLease;
        int percent = GcPercent;
        long limit = _memoryLimit;
        long goal = 0;
        var runner = new ClusterCycleRunner(GrainFactory, _membership, bound);
        CycleOutcome outcome;
        try
        {
            outcome = await runner.RunAsync(cycle, _silo.SiloAddress, nodes, GcMode, live, dropped, dropUnknown, marked =>
            {
                _pacing = true;
                long sum = marked.Sum();
                goal = GcPacer.GoalFor(sum, percent, limit);
                // Each node keeps what it marked and gets an equal part of the room the goal leaves: a share in proportion
                // to marked bytes alone gave a node that marked almost nothing a trigger near 0, and it asked for a cycle
                // after every malloc (cycles back to back once such requests were no longer dropped).
                long room = Math.Max(0, goal - sum) / marked.Length;
                return [.. marked.Select(m => goal == long.MaxValue ? long.MaxValue : m + room)];
            });
        }
        catch (GcAbortedException e)
        {
            _gcAborted++;
            _lastAbort = e.Message;
            LogAborted(_logger, cycle, e.Message);
            throw;
        }

        foreach (GrainId c in dropped)
        {
            _endedClients.Remove(c);
        }

        GcNodeCycle[] perNode = outcome.PerNode;
        _gcMarked = perNode.Sum(n => n.Marked);
        _numGc++;
        _gcPauseMs += GcMode == GcMode.Concurrent ? outcome.StopMs + outcome.RestartMs : outcome.StopMs + outcome.MarkMs + outcome.RestartMs;
        double elapsedMs = Stopwatch.GetElapsedTime(_gcStartTicks).TotalMilliseconds;
        var result = new ClusterGcCycle(_numGc, forced, elapsedMs / 1000, elapsedMs > 0 ? 100 * _gcPauseMs / elapsedMs : 0,
            outcome.StopMs, outcome.MarkMs, outcome.RestartMs,
            perNode.Sum(n => n.HeapLiveBefore), perNode.Sum(n => n.HeapLiveAfter), _gcMarked, goal,
            outcome.Batches, outcome.Waves, GcMode, perNode, outcome.Parts);
        _recentCycles.Enqueue(result);
        while (_recentCycles.Count > RecentCycles)
        {
            _recentCycles.Dequeue();
        }

        LogGcTrace(_logger, result.Trace);
        TaskCompletionSource<ClusterGcCycle> done = _nextCycle;
        _nextCycle = new TaskCompletionSource<ClusterGcCycle>(TaskCreationOptions.RunContinuationsAsynchronously);
        done.TrySetResult(result);
        return result;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "{Trace}")]
    private static partial void LogGcTrace(ILogger logger, string trace);

    [LoggerMessage(Level = LogLevel.Warning, Message = "gc cycle {Cycle} aborted: {Reason}; every node dropped its marks, nothing was swept")]
    private static partial void LogAborted(ILogger logger, long cycle, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "gc: attempt {Attempt} aborted ({Reason}); a new cycle starts over the live nodes after {BackoffMs} ms, once membership has decided about [{Suspects}]")]
    private static partial void LogRetry(ILogger logger, int attempt, string reason, double backoffMs, string suspects);

    [LoggerMessage(Level = LogLevel.Information, Message = "gc: client {Client}'s lease expired; its roots go at the next cycle")]
    private static partial void LogClientExpired(ILogger logger, GrainId client);
}
