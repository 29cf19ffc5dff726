using System.Diagnostics;
using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using ClusterHeap.Grains.Placement;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;
using Orleans.Placement;
using Orleans.Runtime;
using GcMode = ClusterHeap.Contracts.GcMode;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// One node's part of the cluster collector (docs/DESIGN.md §12), pinned to its silo: client roots and the link of a
/// pointer into a pointer word, and the steps of a cycle. A cycle here is the node heap's <see cref="GcMarkSession"/>:
/// begun with this node's gate closed (GcGate.cs; in concurrent mode only for this node's own cut, which waits for no
/// other node's), marked from this node's root sets and from foreign marks other nodes send; every word the marker
/// finds pointing into another node's arena is sent to that node's gc grain, in one-way batches, node to node. The
/// counters of batches sent and batches received (a batch counts as received only once everything it led to was sent)
/// let the coordinator detect termination (Mattern's four counters).
/// <para>
/// Concurrency model: Orleans runs one call at a time here; the cycle's state below is this grain's. A step of a cycle
/// that is not this node's current one (stale: an aborted cycle's late batch) changes nothing.
/// </para>
/// </summary>
[NodePlacement, Immovable, KeepAlive]
public sealed partial class GcNodeGrain : Grain, IGcNodeGrain
{
    private const int BatchWords = 4096;           // foreign marks per one-way message
    private const long StepObjects = 20_000;       // grey objects per concurrent mark step (a slice of a few ms)

    private readonly GcNode _gc;
    private readonly ILogger<GcNodeGrain> _logger;
    private long _cycle;                            // the cycle that stopped this node, 0 when none
    private GcMarkSession? _session;                // open from BeginMark to Finish/Abort
    private Dictionary<int, (ushort Generation, string Node)> _routes = [];
    private long _sent, _received, _lost, _markTicks;
    private int _clientsDropped;
    private string? _failure;
    private List<(long Cycle, ulong[] Words)>? _early;   // batches of a cycle not begun here yet (another node began first); a stop keeps its cycle's
    private StepClock _clock;                        // where this node's part of _cycle spent its time (GcNodeParts)
    private long _abortedUpTo;                       // the newest cycle aborted here: a stop of it or an older one that arrives late must not close the gate

    /// <summary>Created by Orleans on the silo the key names.</summary>
    public GcNodeGrain(GcNode gc, ILogger<GcNodeGrain> logger)
    {
        _gc = gc;
        _logger = logger;
    }

    private HeapNodeService Node => _gc.Node;

    /// <inheritdoc/>
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        string key = this.GetPrimaryKeyString();
        if (key != Node.Name)
        {
            return Task.FromException(HeapError.InvalidArgument($"gc node grain {key} activated on silo {Node.Name}").ToException());
        }

        if (_gc.HasOrphan(null) || _gc.Gate.IsClosed)
        {
            // An earlier activation went away in the middle of a cycle: whatever it was in is lost.
            AbortCurrent("the gc node grain was activated again in the middle of a cycle");
        }

        return Node.Ready.WaitAsync(cancellationToken);
    }

    /// <inheritdoc/>
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        if (_session is not null || _gc.Gate.IsClosed)
        {
            AbortCurrent($"the gc node grain deactivates ({reason})");
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task AddRootsAsync(GrainId client, HeapPointer[] pointers)
    {
        foreach (HeapPointer p in pointers)
        {
            if (HeapErrors.CheckRange(Node, p, 0) is { } error)
            {
                return Task.FromException(error.ToException());
            }
        }

        foreach (HeapPointer p in pointers)
        {
            _gc.Roots.Add(client, p.Value);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<int> ReleaseRootsAsync(GrainId client, HeapPointer[] pointers)
    {
        int released = 0;
        foreach (HeapPointer p in pointers)
        {
            released += _gc.Roots.Release(client, p.Value) ? 1 : 0;
        }

        return Task.FromResult(released);
    }

    /// <inheritdoc/>
    public Task<int> CountRootsAsync(GrainId client) => Task.FromResult(_gc.Roots.Count(client));

    /// <inheritdoc/>
    public Task LinkAsync(HeapPointer word, HeapPointer target)
    {
        if (HeapErrors.CheckOwner(word, Node.Slot, Node.Generation, Node.Name) is { } gone)
        {
            return Task.FromException(gone.ToException());
        }

        PointerError e = Node.Heap.TryGetWordKind((nuint)word.Address, out WordKind kind);
        if (e == PointerError.BadLength)
        {
            return Task.FromException(HeapError.InvalidArgument($"word {word} is not 8-byte aligned: a pointer word starts at a multiple of 8").ToException());
        }

        if (e != PointerError.None)
        {
            return Task.FromException(HeapErrors.FromPointerError(e, word, sizeof(ulong), Node.Name).ToException());
        }

        if (kind != WordKind.Pointer)
        {
            return Task.FromException(HeapError.InvalidArgument(
                $"word {word} is a scalar word (the heap bitmap says {kind}): a pointer stored there keeps nothing alive; allocate the object with kind Pointer").ToException());
        }

        Span<byte> bytes = stackalloc byte[sizeof(ulong)];
        BitConverter.TryWriteBytes(bytes, target.Value);
        PointerError w = Node.Heap.TryWrite((nuint)word.Address, bytes);
        return w == PointerError.None ? Task.CompletedTask : Task.FromException(HeapErrors.FromPointerError(w, word, sizeof(ulong), Node.Name).ToException());
    }

    /// <inheritdoc/>
    public Task<long> FinishSweepAsync()
    {
        NodeHeap heap = Node.Heap;
        heap.FinishSweep();
        return Task.FromResult(heap.ReadMemStats().HeapObjects);
    }

    /// <inheritdoc/>
    public Task<long> SweepBeforeStopAsync(long cycle)
    {
        // Mutators run: this is the sweep Go's gcStart does before it stops the world, so that pause 1's sweep
        // termination finds nothing left (GcMarkSession.SweptInPause, reported in GcNodeParts).
        long t0 = Stopwatch.GetTimestamp();
        long spans = Node.Heap.SweepBeforeStop();
        _clock.SweptBefore(cycle, spans, Stopwatch.GetTimestamp() - t0);
        _clock.Replied();
        return Task.FromResult(spans);
    }

    /// <inheritdoc/>
    public async Task<GcMarkCounters> StopAndBeginAsync(GcMarkPlan plan, SiloAddress coordinator)
    {
        if (plan.Mode != GcMode.Concurrent)
        {
            throw HeapError.InvalidArgument($"node {Node.Name}: cycle {plan.Cycle} is a stop-the-world cycle, which has no cut").ToException();
        }

        await StopWorldAsync(plan.Cycle, coordinator);
        GcMarkCounters counters = await BeginMarkAsync(plan);
        if (plan.Cycle == _cycle && _session is { IsOpen: true })
        {
            // The cut is this node's alone: with its snapshot taken and the barrier on, its mutators run again at once,
            // whether or not the other nodes have cut (docs/DESIGN.md §12, "The cut"). An abort in the meantime opened
            // the gate already.
            _gc.Gate.Open();
            _clock.Opened(finish: false, _gc.Gate.Held);
        }

        return counters;
    }

    /// <inheritdoc/>
    public async Task<GcMarkCounters> StopAndTerminateAsync(long cycle, SiloAddress coordinator)
    {
        await StopWorldAsync(cycle, coordinator);
        return await TerminateAsync(cycle);
    }

    /// <inheritdoc/>
    public async Task StopWorldAsync(long cycle, SiloAddress coordinator)
    {
        if (_gc.BeforeStop is { } beforeStop)
        {
            await beforeStop(cycle);   // a test's: this node as if the stop had not reached it yet
        }

        if (cycle <= _abortedUpTo)
        {
            // Its abort came first (the coordinator gave up before this call ran): closing the gate now would stop the
            // world for a cycle nobody will finish.
            throw HeapError.Unavailable($"node {Node.Name}'s stop for cycle {cycle}", "the cycle was aborted already").ToException();
        }

        if ((_session is not null && _cycle != cycle) || _gc.HasOrphan(_session))
        {
            // A cycle this node never heard finish: its coordinator moved, or an earlier activation of this grain left it
            // open. Nothing is swept on its evidence.
            AbortCurrent($"cycle {cycle} started before cycle {_cycle} ended here");
        }

        _clock.Stopping(cycle, _gc.Gate.Held);
        _cycle = cycle;
        Node.SawGcCycle(cycle);
        _early?.RemoveAll(e => e.Cycle != cycle);
        _gc.Watch(cycle, coordinator, Node.Options.NodeCallTimeout * 3);
        long t0 = Stopwatch.GetTimestamp();
        if (!await _gc.Gate.CloseAsync(Node.Options.NodeCallTimeout))
        {
            // Either the abort opened the gate while the calls in flight drained (it does not wait for them), or they did
            // not drain in time (the coordinator aborts, which opens it).
            throw HeapError.Unavailable($"node {Node.Name}'s stop for cycle {cycle}", _cycle != cycle || !_gc.Gate.IsClosed
                ? "the cycle was aborted while calls in flight drained"
                : $"{_gc.Gate.InFlight} calls still in flight after {Node.Options.NodeCallTimeout}").ToException();
        }

        _clock.Closed(t0, _gc.Gate.DrainedAtLastClose);
    }

    /// <inheritdoc/>
    public async Task<GcMarkCounters> BeginMarkAsync(GcMarkPlan plan)
    {
        if (plan.Cycle != _cycle || !_gc.Gate.IsClosed)
        {
            throw HeapError.InvalidArgument($"node {Node.Name}: cycle {plan.Cycle} did not stop this node (its cycle is {_cycle})").ToException();
        }

        _routes = [];
        for (int i = 0; i < plan.Slots.Length; i++)
        {
            _routes[plan.Slots[i]] = (plan.Generations[i], plan.Nodes[i]);
        }

        _sent = _lost = _markTicks = 0;
        _received = 0;
        _failure = null;
        _clientsDropped = _gc.Roots.Drop(plan.LiveClients, plan.DroppedClients, plan.DropUnknownClients);
        NodeHeap heap = Node.Heap;
        heap.PointerGeneration = Node.Generation;
        long t0 = Stopwatch.GetTimestamp();
        _gc.SessionBegan(plan.Mode == GcMode.Concurrent);
        _session = plan.Mode == GcMode.Concurrent ? heap.BeginConcurrentMarkSession() : heap.BeginMarkSession();
        _gc.SessionOpened(_session);
        Send(_session.ShadeRoots());
        _clock.Begun(t0, _session.SweptInPause);
        foreach ((long c, ulong[] batch) in _early ?? [])
        {
            if (c == plan.Cycle)
            {
                Send(_session.Shade(batch));
                _received++;
            }
        }

        _early = null;
        _markTicks += Stopwatch.GetTimestamp() - t0;
        if (_gc.AfterRootsMarked is { } hook)
        {
            await hook(plan.Cycle);
        }

        return Counters();
    }

    /// <inheritdoc/>
    public Task ShadeAsync(long cycle, ulong[] words)
    {
        if (cycle == _cycle && _session is null && !_gc.Gate.IsClosed)
        {
            return Task.CompletedTask;              // a late batch of a cycle that finished here: changes nothing
        }

        if (cycle != _cycle || _session is not { IsOpen: true } session)
        {
            // A cycle not begun here: its other nodes stop and begin in one call each, so a batch can arrive before this
            // node's stop. Kept for its begin (shaded and counted there); a stop for any other cycle drops it, so a late
            // batch of an aborted cycle changes nothing.
            (_early ??= []).Add((cycle, words));
            return Task.CompletedTask;
        }

        try
        {
            long t0 = Stopwatch.GetTimestamp();
            Send(session.Shade(words));
            _markTicks += Stopwatch.GetTimestamp() - t0;
        }
        catch (Exception e)
        {
            _failure = $"node {Node.Name}: {e.GetType().Name}: {e.Message}";
        }

        _received++;
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<GcMarkCounters> GetCountersAsync(long cycle) =>
        Task.FromResult(cycle == _cycle ? Counters() : new GcMarkCounters(cycle, 0, 0, $"node {Node.Name} is in cycle {_cycle}, not {cycle}", 0, false));

    /// <inheritdoc/>
    public Task<GcNodeCycle> FinishAsync(long cycle, long trigger)
    {
        if (cycle != _cycle || _session is not { IsOpen: true } session)
        {
            throw HeapError.InvalidArgument($"node {Node.Name}: cycle {cycle} has no open mark here (its cycle is {_cycle})").ToException();
        }

        _clock.Finishing();
        long t0 = Stopwatch.GetTimestamp();
        GcCycle local = session.Finish(sweepInBackground: false);   // queued once every node finished: SweepInBackgroundAsync
        _session = null;
        _gc.Trigger = trigger;
        _gc.CycleEnded(abortReason: null);
        _clock.Finished(t0);
        _gc.Gate.Open();
        _clock.Opened(finish: true, _gc.Gate.Held);
        MarkCounts c = local.Counts;
        return Task.FromResult(new GcNodeCycle(Node.Name, local.HeapLiveBefore, local.HeapLiveAfter, local.Marked, c.Objects,
            c.Dangling + _lost, c.Interior, c.Foreign, local.Roots, _clientsDropped, Stopwatch.GetElapsedTime(0, _markTicks).TotalMilliseconds,
            _clock.Parts()));
    }

    /// <inheritdoc/>
    public Task SweepInBackgroundAsync(long cycle)
    {
        // A late call for an older cycle would start the sweeper a newer cycle's finish holds: that one's call starts it.
        if (cycle >= _cycle)
        {
            Node.Heap.StartBackgroundSweep();
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task AbortAsync(long cycle, string reason)
    {
        // Any step may be waiting (the stop on its drain): this call interleaves with it and never waits itself. An abort
        // of a newer cycle than this node's also ends this node's (the coordinator runs one cycle at a time, so the older
        // one is over there); a node whose part already finished or aborted has nothing to drop.
        _abortedUpTo = Math.Max(_abortedUpTo, cycle);
        Node.SawGcCycle(cycle);
        // A node whose finish held its sweeper gets no SweepInBackgroundAsync from an aborted cycle (another node's finish
        // failed): the abort starts it instead.
        Node.Heap.StartBackgroundSweep();
        if (cycle >= _cycle && (_session is not null || _gc.Gate.IsClosed || _gc.HasOrphan(_session)))
        {
            AbortCurrent(reason);
        }

        return Task.CompletedTask;
    }

    private void AbortCurrent(string reason)
    {
        if (_session is { } session)
        {
            session.Abort();
            _session = null;
        }

        _gc.AbortOrphan(null);

        LogAborted(_logger, Node.Name, _cycle, reason);
        _cycle = 0;
        _early = null;
        _gc.CycleEnded(reason);
        _gc.Gate.Open();
    }

    private GcMarkCounters Counters(bool done = true) => new(_cycle, _sent, _received, _failure, _session is { IsOpen: true } s ? s.Counts.Bytes : 0, done);

    /// <inheritdoc/>
    public Task<GcMarkCounters> MarkStepAsync(long cycle)
    {
        if (cycle != _cycle || _session is not { IsConcurrent: true, IsOpen: true } session)
        {
            return Task.FromResult(new GcMarkCounters(cycle, 0, 0, $"node {Node.Name}: cycle {cycle} has no concurrent mark here", 0, false));
        }

        long t0 = Stopwatch.GetTimestamp();
        GcMarkStep step = session.MarkStep(StepObjects);
        Send(step.Outgoing);
        _markTicks += Stopwatch.GetTimestamp() - t0;
        _clock.Replied();
        return Task.FromResult(Counters(step.Drained && step.Outgoing.Length == 0));
    }

    /// <inheritdoc/>
    public Task<GcMarkCounters> TerminateAsync(long cycle)
    {
        if (cycle != _cycle || _session is not { IsOpen: true } session || !_gc.Gate.IsClosed)
        {
            return Task.FromResult(new GcMarkCounters(cycle, 0, 0, $"node {Node.Name}: cycle {cycle} is not stopped for termination here", 0, false));
        }

        long t0 = Stopwatch.GetTimestamp();
        GcMarkTermination t = session.MarkTermination();
        Send(t.Outgoing);
        _markTicks += Stopwatch.GetTimestamp() - t0;
        _clock.Terminated(t0);
        return Task.FromResult(Counters(t.Done && t.Outgoing.Length == 0));
    }

    /// <summary>
    /// Sends foreign words to their owners, in batches; words of no live node are dangling, and so are words of this
    /// node's own slot: its heap found them outside its arena (the zero-size base, the metadata before the arena, the
    /// window past it), where no object lives. Sent, such a word came back here as foreign again, for ever: one batch
    /// always in flight, so the mark never terminated.
    /// </summary>
    private void Send(ulong[] words)
    {
        if (words.Length == 0)
        {
            return;
        }

        var byNode = new Dictionary<string, List<ulong>>();
        foreach (ulong w in words)
        {
            int slot = HeapPointer.SlotOf(w & HeapPointer.AddressMask);
            if (slot == Node.Slot || !_routes.TryGetValue(slot, out (ushort Generation, string Node) route)
                || route.Generation != (ushort)(w >> HeapPointer.AddressBits))
            {
                _lost++;
                continue;
            }

            if (!byNode.TryGetValue(route.Node, out List<ulong>? list))
            {
                byNode[route.Node] = list = [];
            }

            list.Add(w);
        }

        foreach ((string node, List<ulong> list) in byNode)
        {
            IGcNodeGrain target = GrainFactory.GetGrain<IGcNodeGrain>(node);
            for (int i = 0; i < list.Count; i += BatchWords)
            {
                _sent++;
                target.ShadeAsync(_cycle, list.GetRange(i, Math.Min(BatchWords, list.Count - i)).ToArray()).Ignore();
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node}: cycle {Cycle} aborted ({Reason}); every mark dropped, nothing swept")]
    private static partial void LogAborted(ILogger logger, string node, long cycle, string reason);
}
