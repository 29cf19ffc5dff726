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
/// this node's part of a cycle when its coordinator's silo dies (the world would otherwise stay stopped). The cycle's
/// steps run in <see cref="GcNodeGrain"/>.
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

    /// <summary>The world stopped for <paramref name="cycle"/>: watch the coordinator's silo until the cycle ends here.</summary>
    internal void Watch(long cycle, SiloAddress coordinator, TimeSpan bound)
    {
        var cts = new CancellationTokenSource(bound);
        // Swap first: the old watchdog's cancellation may run inline, and it must see that it is no longer the current one.
        Interlocked.Exchange(ref _watch, cts)?.Cancel();
        _ = WatchAsync(cycle, coordinator, cts);
    }

    /// <summary>This node's part of the cycle ended (finished or aborted).</summary>
    internal void CycleEnded(string? abortReason)
    {
        CancellationTokenSource? watch = Interlocked.Exchange(ref _watch, null);
        watch?.Cancel();
        TaskCompletionSource? session = _stwSession;
        _stwSession = null;
        session?.TrySetResult();
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

    private async Task WatchAsync(long cycle, SiloAddress coordinator, CancellationTokenSource cts)
    {
        string? reason = null;
        try
        {
            await foreach (ClusterMembershipSnapshot snapshot in _membership.MembershipUpdates.WithCancellation(cts.Token))
            {
                if (snapshot.GetSiloStatus(coordinator) is SiloStatus.Dead or SiloStatus.ShuttingDown or SiloStatus.Stopping)
                {
                    reason = $"the coordinator's silo {coordinator} is {snapshot.GetSiloStatus(coordinator)}";
                    break;
                }
            }
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
