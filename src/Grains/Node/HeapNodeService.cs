using ClusterHeap.Contracts;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Node;

/// <summary>
/// The silo singleton that owns this silo's <see cref="NodeHeap"/> (mallocinit, docs/DESIGN.md §2, §5).
/// At <see cref="ServiceLifecycleStage.Active"/> it asks the central heap grain for a slot and a
/// generation, then creates the heap with its arena at that slot's hint. If the hint cannot be had
/// (another heap in this process holds it, as in-process test clusters do), it gives the slot back
/// and asks for another. The heap node grain and the mcache grains of this silo use the heap
/// through this service; the <see cref="LeaseBook"/> tracks the cross-node leases on both sides.
/// </summary>
/// <remarks>
/// Concurrency model: <see cref="Heap"/> is set once, before <see cref="Ready"/> completes. Grains
/// hold the world lock's shared side (<c>Heap.EnterMutator()</c>) around the mallocs, frees and lease
/// moves of a call, so ReadMemStats and Verify, which take its exclusive side, see a still heap; reads
/// and writes are lock-free lookups (NodeHeap.Locate) and take neither side.
/// Grants only move the growth limit up, under <c>_grantLock</c>.
/// </remarks>
public sealed partial class HeapNodeService : ILifecycleParticipant<ISiloLifecycle>, IDisposable
{
    private const int MaxSlotAttempts = 16;

    private readonly ClusterHeapOptions _options;
    private readonly ILocalSiloDetails _silo;
    private readonly IGrainFactory _grains;
    private readonly ILogger<HeapNodeService> _logger;
    private readonly TaskCompletionSource _ready = new(TaskCreationOptions.RunContinuationsAsynchronously);
    private readonly Lock _grantLock = new();
    private readonly Lock _noteLock = new();
    private NodeHeap? _heap;
    private long _grants;
    private long _centralCalls;
    private CentralNote _note = new(0, 0, long.MaxValue);

    /// <summary>Created by DI, one per silo.</summary>
    public HeapNodeService(IOptions<ClusterHeapOptions> options, ILocalSiloDetails silo, IGrainFactory grains, ILogger<HeapNodeService> logger)
    {
        _options = options.Value;
        _silo = silo;
        _grains = grains;
        _logger = logger;
    }

    /// <summary>The options this silo was started with.</summary>
    public ClusterHeapOptions Options => _options;

    /// <summary>This node's name: the silo name.</summary>
    public string Name => _silo.Name;

    /// <summary>This silo's address (identifies the node in membership; names are reused by restarts).</summary>
    public SiloAddress Silo => _silo.SiloAddress;

    /// <summary>True once a slot was assigned (possibly before the heap exists).</summary>
    public bool Assigned { get; private set; }

    /// <summary>The arena slot.</summary>
    public int Slot { get; private set; } = -1;

    /// <summary>The slot's generation, carried in the top 16 bits of every pointer into this arena.</summary>
    public ushort Generation { get; private set; }

    /// <summary>Completes when the heap exists.</summary>
    public Task Ready => _ready.Task;

    /// <summary>The node heap; throws until <see cref="Ready"/>.</summary>
    public NodeHeap Heap => _heap ?? throw new ClusterHeapException(HeapError.InvalidArgument($"node {Name} has no heap yet (still starting)"));

    /// <summary>Cross-node leases this node lent or holds.</summary>
    public LeaseBook Leases { get; } = new();

    /// <summary>Grants received (cumulative).</summary>
    public long Grants => Interlocked.Read(ref _grants);

    /// <summary>Calls this node's mcache grains made to the central heap (cumulative); the data path's central heap traffic.</summary>
    public long CentralCalls => Interlocked.Read(ref _centralCalls);

    /// <summary>Counts one call of an mcache grain to the central heap.</summary>
    public void CountCentralCall() => Interlocked.Increment(ref _centralCalls);

    /// <summary>The latest copy of the central heap's durable facts.</summary>
    public CentralNote Note
    {
        get { lock (_noteLock) { return _note; } }
    }

    /// <summary>The growth limit the central heap granted, or 0 before the heap exists.</summary>
    public long Granted => _heap?.GrowthLimit ?? 0;

    /// <summary>A pointer into this arena.</summary>
    public HeapPointer PointerTo(nuint address) => HeapPointer.Create(Generation, address);

    /// <summary>Raises the growth limit to <paramref name="growthLimit"/> (never lowers it).</summary>
    public void ApplyGrant(long growthLimit)
    {
        lock (_grantLock)
        {
            NodeHeap heap = Heap;
            if (growthLimit > heap.GrowthLimit)
            {
                heap.GrowthLimit = growthLimit;
                Interlocked.Increment(ref _grants);
            }
        }
    }

    /// <summary>Keeps <paramref name="note"/> when it is newer than the one held.</summary>
    public void KeepNote(CentralNote note)
    {
        lock (_noteLock)
        {
            if (note.Version >= _note.Version)
            {
                _note = note;
            }
        }
    }

    /// <inheritdoc/>
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(HeapNodeService), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    private async Task StartAsync(CancellationToken cancellation)
    {
        ICentralHeapGrain central = _grains.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap);
        var excluded = new List<int>();
        for (int attempt = 0; attempt < MaxSlotAttempts; attempt++)
        {
            NodeAssignment assignment = await RegisterAsync(central, excluded, cancellation);
            Slot = assignment.Slot;
            Generation = assignment.Generation;
            Assigned = true;

            var heap = NodeHeap.Create(new HeapOptions
            {
                ArenaSize = _options.ArenaSize,
                Slot = assignment.Slot,
                ScavengeDelay = _options.ScavengeDelay,
                GrowthLimit = assignment.Granted,
                TrackHeapLive = true, // the cluster collector's pacer reads it (Gc/GcNode.cs)
                BackgroundSweeper = _options.BackgroundSweeper,
            });
            if (heap.Layout.GotHint && HeapPointer.SlotOf(heap.ArenaStart) == assignment.Slot)
            {
                _heap = heap;
                LogStarted(_logger, Name, Slot, Generation, heap.ArenaStart, assignment.Granted);
                _ready.TrySetResult();
                return;
            }

            // SAFETY: the heap was never handed out, so nothing can touch it after this.
            LogSlotTaken(_logger, Name, assignment.Slot, heap.ArenaStart);
            heap.Dispose();
            excluded.Add(assignment.Slot);
        }

        var error = new InvalidOperationException($"node {Name}: no slot's hint address could be reserved after {MaxSlotAttempts} attempts");
        _ready.TrySetException(error);
        throw error;
    }

    /// <summary>
    /// Graceful stop (SIGTERM, <c>StopAsync</c>): hands this node's share of the cluster tier back
    /// while the silo can still make calls, before its grains deactivate. Each mcache grain that
    /// holds leases returns them (the call runs in the grain's own turn, so its bits are not
    /// touched concurrently), then the central heap reclaims the slot, the grants and the leases
    /// this node lent, exactly as for a dead node, without waiting for membership to declare it.
    /// Best effort: a failure is logged and the membership watcher's death report still follows.
    /// </summary>
    private async Task StopAsync(CancellationToken cancellation)
    {
        if (!Assigned)
        {
            return;
        }

        string[] held = Leases.Held.Select(l => l.Holder).Distinct().ToArray();
        int lent = Heap.LentLeases.Count;
        try
        {
            foreach (string? holder in held)
            {
                await _grains.GetGrain<IMCacheGrain>(holder).ReturnLeasesAsync().WaitAsync(cancellation);
            }

            // What this node lent dies with its arena: its lessees drop those leases now (they would see "node gone").
            foreach (IGrouping<string, LentLease> lessee in Heap.LentLeases.GroupBy(l => l.Lessee.Node))
            {
                LeaseKey[] keys = [.. lessee.Select(l => new LeaseKey(Slot, Generation, l.LeaseId))];
                await _grains.GetGrain<IHeapNodeGrain>(lessee.Key).RevokeLeasesAsync(keys).WaitAsync(cancellation);
            }

            await _grains.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap).NodeLeftAsync(Silo).WaitAsync(cancellation);
            LogHandedBack(_logger, Name, Slot, held.Length, lent);
        }
        catch (Exception e)
        {
            LogHandBackFailed(_logger, e, Name);
        }
    }

    private async Task<NodeAssignment> RegisterAsync(ICentralHeapGrain central, List<int> excluded, CancellationToken cancellation)
    {
        // The central heap may be moving (its silo died): a few retries ride that out.
        for (int attempt = 1; ; attempt++)
        {
            try
            {
                return await central.RegisterNodeAsync(new NodeRegistration(Name, Silo, _options.ArenaSize, [.. excluded], _options.ProcessorsPerNode));
            }
            catch (Exception e) when (attempt < 5 && e is not ClusterHeapException)
            {
                LogRegisterRetry(_logger, e, Name, attempt);
                await Task.Delay(TimeSpan.FromMilliseconds(200 * attempt), cancellation);
            }
        }
    }

    /// <summary>Unmaps the arena. Runs when the silo's services are disposed, after its grains are gone.</summary>
    public void Dispose()
    {
        NodeHeap? heap = Interlocked.Exchange(ref _heap, null);
        heap?.Dispose();
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} heap started: slot {Slot} generation {Generation}, arena at 0x{ArenaStart:x}, growth limit {Granted} bytes")]
    private static partial void LogStarted(ILogger logger, string node, int slot, ushort generation, nuint arenaStart, long granted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node}: slot {Slot}'s hint was taken (arena landed at 0x{ArenaStart:x}); asking for another slot")]
    private static partial void LogSlotTaken(ILogger logger, string node, int slot, nuint arenaStart);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} leaving: slot {Slot} handed back to the central heap, leases held by {Holders} mcaches returned, {Lent} lent leases reclaimed")]
    private static partial void LogHandedBack(ILogger logger, string node, int slot, int holders, int lent);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node} leaving: handing slot and leases back failed; membership will report the node dead")]
    private static partial void LogHandBackFailed(ILogger logger, Exception exception, string node);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Node {Node}: registering with the central heap failed (attempt {Attempt}); retrying")]
    private static partial void LogRegisterRetry(ILogger logger, Exception exception, string node, int attempt);
}
