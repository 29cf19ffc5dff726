using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// This silo's part of the cluster collector outside any grain turn (docs/DESIGN.md §12): the <see cref="Gate"/> its
/// mutators pass, the <see cref="Roots"/> its clients hold, the pacer's trigger (this node's share of the cluster's
/// heap goal: reaching it is a shouldhelpgc point that asks the central heap for a cycle), and the watchdog that aborts
/// this node's part of a cycle when a silo of the cycle leaves membership (the coordinator's or another node's: the
/// cycle cannot finish, and the world would otherwise stay stopped until the coordinator's abort arrives, if it does)
/// or its coordinator stays silent too long. The cycle's steps run in <see cref="GcNodeGrain"/>.
/// <para>
/// Concurrency model: <see cref="Gate"/> and <see cref="Roots"/> are thread-safe; the trigger and the request flag are
/// single words read and written atomically; the watchdog's state is written by the gc node grain's turns only.
/// </para>
/// </summary>
public sealed partial class GcNode
{
    private readonly HeapNodeService _node;
    private readonly IGrainFactory _grains;
    private readonly IClusterMembershipService _membership;
    private readonly ILogger<GcNode> _logger;
    private readonly Lock _rootsLock = new();
    private ClientRoots? _roots;
    private long _trigger;
    private int _cycleRequested;
    private CancellationTokenSource? _watch;   // the watchdog of the cycle that stopped this node; gc node grain's turns
    private TaskCompletionSource<string> _aborted = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private volatile TaskCompletionSource? _stwSession;   // open while a stop-the-world mark session is open here
    private GcMarkSession? _openSession;                  // the mark session open on this heap, whichever activation of the gc node grain opened it; its turns
    private long _cyclesEnded;                            // this node's parts of cycles that finished
    private long _uselessAfter = -1;                      // _cyclesEnded when a malloc still failed after its cycle

    /// <summary>Created by DI, one per silo.</summary>
    public GcNode(HeapNodeService node, IGrainFactory grains, IClusterMembershipService membership, ILogger<GcNode> logger)
    {
        _node = node;
        _grains = grains;
        _membership = membership;
        _logger = logger;
        _trigger = GcPacer.GoalFor(0, Math.Max(0, node.Options.GcPercent), long.MaxValue);
    }

    /// <summary>The door of this node's mutators.</summary>
    public GcGate Gate { get; } = new();

    /// <summary>This node's name.</summary>
    public string Name => _node.Name;

    /// <summary>The node service (heap, slot, generation).</summary>
    public HeapNodeService Node => _node;

    /// <summary>The clients' roots on this node (created with the heap).</summary>
    public ClientRoots Roots
    {
        get
        {
            if (Volatile.Read(ref _roots) is { } roots)
            {
                return roots;   // every gated call reads it: no lock once it exists
            }

            using (_rootsLock.EnterScope())
            {
                return _roots ??= new ClientRoots(_node.Heap);
            }
        }
    }

    /// <summary>heap_live at which this node asks for a cycle (its share of the cluster's goal); long.MaxValue = never.</summary>
    public long Trigger
    {
        get => Interlocked.Read(ref _trigger);
        set => Interlocked.Exchange(ref _trigger, value);
    }

    /// <summary>Test seam: awaited after this node marked its roots, with the world stopped and the session open.</summary>
    internal Func<long, Task>? AfterRootsMarked { get; set; }

    /// <summary>Test seam: awaited as a stop for the cycle begins here, before the gate closes (a test may enter the gate, or hold the stop).</summary>
    internal Func<long, Task>? BeforeStop { get; set; }

    /// <summary>Completes with the reason when this node next aborts its part of a cycle (then a new task starts).</summary>
    public Task<string> NextAbort => Volatile.Read(ref _aborted).Task;

    /// <summary>
    /// The shouldhelpgc point, after a malloc: when heap_live reached this node's trigger, ask the central heap for a
    /// cycle (once until the next cycle ends; the call is one-way, the malloc does not wait for it).
    /// </summary>
    public void AfterMalloc()
    {
        if (_node.Heap.HeapLive < Interlocked.Read(ref _trigger) || Interlocked.Exchange(ref _cycleRequested, 1) != 0)
        {
            return;
        }

        _grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap).RequestCycleAsync(_node.Name).Ignore();
    }

    /// <summary>
    /// An allocation is about to fail at the limit: wait for a cycle first (stepping out of the gate meanwhile, so the
    /// cycle does not wait for this call). False when no cycle could run (off, or it aborted).
    /// </summary>
    public Task<bool> CollectBeforeOutOfMemoryAsync() => Gate.ParkAsync(async () =>
    {
        // A cycle already ran for an allocation that still failed, and none has finished since: it would not help now.
        if (Interlocked.Read(ref _uselessAfter) == Interlocked.Read(ref _cyclesEnded))
        {
            return false;
        }

        try
        {
            // Bounded: a malloc must answer within its caller's timeout; a cycle that takes longer (it may be retrying
            // after an abort) leaves this allocation to fail as it would have.
            await _grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap).CollectAsync().WaitAsync(_node.Options.NodeCallTimeout);
            return true;
        }
        catch (Exception e) when (e is ClusterHeapException or TimeoutException)
        {
            LogOomCycleFailed(_logger, e, _node.Name);
            return false;
        }
    });

    /// <summary>An allocation still failed after the cycle it waited for: the next ones fail at once until another cycle ends.</summary>
    public void CycleDidNotHelp() => Interlocked.Exchange(ref _uselessAfter, Interlocked.Read(ref _cyclesEnded));

    /// <summary>
    /// Completes when no stop-the-world session is open here. Allocations other grains ask of this node (a large object
    /// for a full node, a lent span) wait for it: an object allocated during such a mark would be unmarked, and swept.
    /// A client's call on another node can reach here while this session is open only after its own node finished.
    /// </summary>
    public Task WhenNoStopTheWorldSession => _stwSession?.Task ?? Task.CompletedTask;

    internal void SessionBegan(bool concurrent)
    {
        if (!concurrent)
        {
            _stwSession = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        }
    }

    /// <summary>The gc node grain opened <paramref name="session"/> on this heap (kept here: the silo outlives the activation).</summary>
    internal void SessionOpened(GcMarkSession session) => _openSession = session;

    /// <summary>
    /// True when this node is in a cycle that <paramref name="owned"/> (the calling activation's session, or null) does not
    /// account for: a mark session some other activation of the gc node grain opened, or a gate closed with no session
    /// of the caller's. An activation that went away mid-cycle (its directory entry lived on a silo that died, and the
    /// grain was activated afresh) leaves both behind, and nothing else would ever abort them.
    /// </summary>
    internal bool HasOrphan(GcMarkSession? owned) => _openSession is { IsOpen: true } s && !ReferenceEquals(s, owned);

    /// <summary>Aborts a session another activation left open (see <see cref="HasOrphan"/>); true when there was one.</summary>
    internal bool AbortOrphan(GcMarkSession? owned)
    {
        if (!HasOrphan(owned))
        {
            return false;
        }

        _openSession!.Abort();
        _openSession = null;
        return true;
    }

    /// <summary>
    /// The world stopped for <paramref name="cycle"/>: until the cycle ends here, watch the silos that were active at the
    /// stop (the coordinator's and every node's) and abort this node's part when one of them leaves, or when
    /// <paramref name="bound"/> passes with no word from the coordinator.
    /// </summary>
    internal void Watch(long cycle, SiloAddress coordinator, TimeSpan bound)
    {
        var cts = new CancellationTokenSource(bound);
        // Swap first: the old watchdog's cancellation may run inline, and it must see that it is no longer the current one.
        Interlocked.Exchange(ref _watch, cts)?.Cancel();
        SiloAddress[] cycleSilos = [coordinator, .. _membership.CurrentSnapshot.Members.Values
            .Where(m => m.Status == SiloStatus.Active && !m.SiloAddress.Equals(coordinator)).Select(m => m.SiloAddress)];
        _ = WatchAsync(cycle, coordinator, cycleSilos, cts);
    }

    /// <summary>This node's part of the cycle ended (finished or aborted).</summary>
    internal void CycleEnded(string? abortReason)
    {
        CancellationTokenSource? watch = Interlocked.Exchange(ref _watch, null);
        watch?.Cancel();
        TaskCompletionSource? session = _stwSession;
        _stwSession = null;
        session?.TrySetResult();
        _openSession = null;
        if (abortReason is null)
        {
            Interlocked.Increment(ref _cyclesEnded);
        }

        Interlocked.Exchange(ref _cycleRequested, 0);
        if (abortReason is not null)
        {
            TaskCompletionSource<string> done = Interlocked.Exchange(ref _aborted, new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously));
            done.TrySetResult(abortReason);
        }
    }

    private async Task WatchAsync(long cycle, SiloAddress coordinator, SiloAddress[] cycleSilos, CancellationTokenSource cts)
    {
        string? reason = null;
        try
        {
            (SiloAddress silo, SiloStatus status) = await SiloDeparture.FirstGoneAsync(_membership, cycleSilos, cts.Token);
            // A node's silo gone: the cycle cannot finish (its marks are lost), whatever the coordinator hears and when.
            reason = silo.Equals(coordinator) ? $"the coordinator's silo {coordinator} is {status}" : $"silo {silo} of the cycle is {status}";
        }
        catch (OperationCanceledException)
        {
            // Ended by the cycle (no reason), or the bound passed: a coordinator that is alive but silent that long is lost.
            if (ReferenceEquals(Volatile.Read(ref _watch), cts))
            {
                reason = "the coordinator went silent for longer than the cycle's bound";
            }
        }

        if (reason is null || !ReferenceEquals(Volatile.Read(ref _watch), cts))
        {
            return;
        }

        LogCoordinatorLost(_logger, _node.Name, cycle, reason);
        try
        {
            await _grains.GetGrain<IGcNodeGrain>(_node.Name).AbortAsync(cycle, reason);
        }
        catch (Exception e)
        {
            LogSelfAbortFailed(_logger, e, _node.Name, cycle);
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node}: cycle {Cycle} loses its coordinator ({Reason}); aborting this node's part, nothing is swept")]
    private static partial void LogCoordinatorLost(ILogger logger, string node, long cycle, string reason);

    [LoggerMessage(Level = LogLevel.Error, Message = "Node {Node}: aborting cycle {Cycle} after its coordinator was lost failed")]
    private static partial void LogSelfAbortFailed(ILogger logger, Exception exception, string node, long cycle);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node}: the cycle before an out-of-memory failed; the allocation fails")]
    private static partial void LogOomCycleFailed(ILogger logger, Exception exception, string node);
}
