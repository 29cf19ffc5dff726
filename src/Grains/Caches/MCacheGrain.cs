using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using ClusterHeap.Grains.Placement;
using ClusterHeap.Heap;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Orleans.Placement;

namespace ClusterHeap.Grains.Caches;

/// <summary>
/// One P (docs/DESIGN.md §5): a node heap <see cref="MCache"/> owned by a grain activation pinned to
/// its silo. Orleans runs one call at a time here, so the mcache needs no lock, exactly as Go's P
/// owns its mcache. Allocation path, fast to slow:
/// <list type="number">
/// <item>a lease held for the span class (bits of a span another node lent; no call per object);</item>
/// <item>the heap's mcache → this node's mcentral → mheap (<see cref="TryLocal"/>);</item>
/// <item>growth limit hit: a grant from the central heap raises the node's growth limit, then retry;</item>
/// <item>still nothing (arena full, or no grant left): a cross-node lease from the central heap, or for a
///   large object an allocation on another node;</item>
/// <item>otherwise <see cref="ClusterOutOfMemoryException"/> naming the limit.</item>
/// </list>
/// An exhausted lease goes back to its lender on the next miss of its class and when the grain deactivates.
/// <para>
/// Two calls carry more than one step (Contracts/ObjectEnds.cs): <see cref="MallocStampedAsync"/> allocates and
/// writes each object's first and last bytes before answering, and <see cref="ReadEndsAndFreeAsync"/> reads them
/// and frees through this P's <see cref="MCache.TryFree"/> — the owner's free path, whose free stacks the
/// next mallocs of this P pop without a lock. A refill that needs the central heap and cannot reach it ends a
/// batch with <see cref="HeapErrorKind.Unavailable"/> and the objects already allocated.
/// </para>
/// </summary>
[NodePlacement, Immovable, KeepAlive]
public sealed partial class MCacheGrain : Grain, IMCacheGrain
{
    private readonly HeapNodeService _node;
    private readonly ILogger<MCacheGrain> _logger;
    private readonly Dictionary<int, HeldLease> _leases = [];
    private readonly HeapPointer[] _one = new HeapPointer[1]; // the single-object fast path's result slot (no allocation per call)
    private MCache? _cache;
    private HeapRouter? _router; // routes the ends of objects that live on other nodes (created on first use)
    private string _key = "";
    private int _p;
    private long _mallocs;
    private long _leasedMallocs;
    private long _leasesTaken;
    private long _grantsAsked;

    /// <summary>Created by Orleans on the silo the key names.</summary>
    public MCacheGrain(HeapNodeService node, ILogger<MCacheGrain> logger)
    {
        _node = node;
        _logger = logger;
    }

    private NodeHeap Heap => _node.Heap;

    /// <summary>The central heap for one call, which is counted in <see cref="HeapNodeService.CentralCalls"/>.</summary>
    private ICentralHeapGrain CentralForOneCall()
    {
        _node.CountCentralCall();
        return GrainFactory.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap);
    }

    /// <inheritdoc/>
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        _key = this.GetPrimaryKeyString();
        if (!GrainKeys.TryParseMCache(_key, out string? node, out _p))
        {
            throw HeapError.InvalidArgument($"mcache key '{_key}' is not 'node/P'").ToException();
        }

        // Guards against a stale placement cache activating us on the wrong silo (docs/DESIGN.md §9).
        if (node != _node.Name)
        {
            throw HeapError.InvalidArgument($"mcache {_key} activated on silo {_node.Name}, not on {node}").ToException();
        }

        if (_p >= _node.Options.ProcessorsPerNode)
        {
            throw HeapError.InvalidArgument($"mcache {_key}: node {node} has P = {_node.Options.ProcessorsPerNode} (keys {node}/0..{_node.Options.ProcessorsPerNode - 1})").ToException();
        }

        await _node.Ready.WaitAsync(cancellationToken);
        _cache = Heap.CreateCache();
    }

    /// <inheritdoc/>
    public override async Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        try
        {
            await ReturnLeasesAsync();
        }
        catch (Exception e)
        {
            LogReturnFailed(_logger, e, _key);
        }

        if (_cache is not null)
        {
            Heap.ReleaseCache(_cache);
            _cache = null;
        }
    }

    /// <inheritdoc/>
    public Task PingAsync() => Task.CompletedTask;

    /// <inheritdoc/>
    public Task<MCacheInfo> GetInfoAsync() =>
        Task.FromResult(new MCacheInfo(_key, _node.Name, _p, _mallocs, _leasedMallocs, _leases.Count, _leasesTaken, _grantsAsked));

    /// <inheritdoc/>
    public Task<HeapPointer> MallocAsync(long size, ObjectKind kind = ObjectKind.Noscan)
    {
        if (CheckSize(size) is { } error)
        {
            return Task.FromException<HeapPointer>(error.ToException());
        }

        bool noscan = kind == ObjectKind.Noscan;
        if (Fill(_one, 0, 1, size, null, noscan, out _) == 1)
        {
            return Task.FromResult(_one[0]);
        }

        return MallocOneSlowAsync(size, noscan);
    }

    private async Task<HeapPointer> MallocOneSlowAsync(long size, bool noscan)
    {
        (HeapPointer pointer, HeapError? error) = await MallocSlowAsync(size, noscan);
        return error is null ? pointer : throw error.ToException();
    }

    /// <inheritdoc/>
    public Task<MallocBatchResult> MallocBatchAsync(int count, long size, ObjectKind kind = ObjectKind.Noscan)
    {
        if (count is < 0 or > MallocBatchResult.MaxCount)
        {
            return Task.FromResult(new MallocBatchResult([], HeapError.InvalidArgument($"batch count {count} is outside 0..{MallocBatchResult.MaxCount}")));
        }

        return CheckSize(size) is { } error
            ? Task.FromResult(new MallocBatchResult([], error))
            : MallocManyAsync(count, size, null, kind == ObjectKind.Noscan);
    }

    /// <inheritdoc/>
    public Task<MallocBatchResult> MallocSizesAsync(long[] sizes, ObjectKind kind = ObjectKind.Noscan)
    {
        if (sizes.Length > MallocBatchResult.MaxCount)
        {
            return Task.FromResult(new MallocBatchResult([], HeapError.InvalidArgument($"{sizes.Length} sizes: at most {MallocBatchResult.MaxCount} per call")));
        }

        foreach (long size in sizes)
        {
            if (CheckSize(size) is { } error)
            {
                return Task.FromResult(new MallocBatchResult([], error));
            }
        }

        return MallocManyAsync(sizes.Length, 0, sizes, kind == ObjectKind.Noscan);
    }

    /// <inheritdoc/>
    public async Task<MallocBatchResult> MallocStampedAsync(StampedMallocRequest request)
    {
        long[] sizes = request.Sizes.ToArray();
        foreach (long size in sizes)
        {
            if (CheckSize(size) is { } error)
            {
                return new MallocBatchResult([], error);
            }
        }

        MallocBatchResult reply = await MallocManyAsync(sizes.Length, 0, sizes, request.Kind == ObjectKind.Noscan);
        HeapPointer[] pointers = reply.Pointers;
        List<(int Index, WriteRequest Write)>? remote = null;
        for (int i = 0; i < pointers.Length; i++)
        {
            HeapPointer p = pointers[i];
            (int head, int tail) = ObjectEnds.Parts(sizes[i]);
            if (p.Slot == _node.Slot && p.Generation == _node.Generation)
            {
                // A fresh object of this node: the heap's validated write (it is live and at least size bytes).
                Ends.WriteFresh(Heap, (nuint)p.Address, sizes[i], request.Ends.AsSpan(i * ObjectEnds.Size, ObjectEnds.Size));
                continue;
            }

            // A leased slot or a large object another node allocated: its owner writes it.
            remote ??= [];
            remote.Add((i, new WriteRequest(p, request.Ends.AsSpan(i * ObjectEnds.Size, head).ToArray())));
            if (tail > 0)
            {
                remote.Add((i, new WriteRequest(p.Offset(sizes[i] - tail), request.Ends.AsSpan(i * ObjectEnds.Size + ObjectEnds.Half, tail).ToArray())));
            }
        }

        if (remote is null)
        {
            return reply;
        }

        (int Index, HeapError Error)? failed = await StampRemoteAsync(remote);
        // Objects from the first one not stamped on are not handed out (their owner refused the write: it died).
        return failed is { } f ? new MallocBatchResult(pointers[..f.Index], f.Error) : reply;
    }

    /// <inheritdoc/>
    public Task<EndsFreeResult> ReadEndsAndFreeAsync(EndsFreeRequest request)
    {
        ReadOnlySpan<HeapPointer> pointers = request.Pointers;
        ReadOnlySpan<long> sizes = request.Sizes;
        byte[] ends = new byte[pointers.Length * ObjectEnds.Size];
        HeapError?[]? errors = null;
        MCache cache = _cache!;
        using (Heap.EnterMutator())
        {
            for (int i = 0; i < pointers.Length; i++)
            {
                HeapError? error = Ends.Read(_node, pointers[i], sizes[i], ends.AsSpan(i * ObjectEnds.Size, ObjectEnds.Size)) ?? OwnersFree(cache, pointers[i]);
                if (error is not null)
                {
                    (errors ??= new HeapError?[pointers.Length])[i] = error;
                }
            }
        }

        return Task.FromResult(new EndsFreeResult(ends, errors));
    }

    /// <summary>
    /// The owner's free (Heap/MCache.FreeStack.cs): a small object of this node goes onto this P's free stack and
    /// this P's next malloc of its class takes it back, with no lock; anything else is freed under the locks, or
    /// refused with the reason. Ends.Read has checked slot and generation.
    /// </summary>
    private HeapError? OwnersFree(MCache cache, HeapPointer pointer)
    {
        nuint address = (nuint)pointer.Address;
        if (address == Heap.ZeroBase)
        {
            return null; // Free(zerobase) is a no-op, as in the heap
        }

        PointerError result = cache.TryFree(address);
        return result == PointerError.None ? null : HeapErrors.FromPointerError(result, pointer, 0, _node.Name);
    }

    /// <summary>Writes the ends of objects that live on other nodes; the first refused write, or null.</summary>
    private async Task<(int Index, HeapError Error)?> StampRemoteAsync(List<(int Index, WriteRequest Write)> writes)
    {
        _router ??= new HeapRouter(GrainFactory);
        (int Index, HeapError Error)? first = null;
        foreach ((int index, WriteRequest? write) in writes)
        {
            (IHeapNodeGrain? owner, HeapError? gone) = await _router.TryResolveAsync(write.Pointer);
            HeapError? error = owner is null ? gone : (await owner.WriteBatchAsync([write]))[0];
            if (error is not null && (first is null || index < first.Value.Index))
            {
                first = (index, error);
            }
        }

        return first;
    }

    private async Task<MallocBatchResult> MallocManyAsync(int count, long size, long[]? sizes, bool noscan)
    {
        var result = new HeapPointer[count];
        int done = 0;
        while (true)
        {
            done = Fill(result, done, count, size, sizes, noscan, out _);
            if (done == count)
            {
                return new MallocBatchResult(result, null);
            }

            try
            {
                (HeapPointer pointer, HeapError? error) = await MallocSlowAsync(sizes?[done] ?? size, noscan, mayWaitForGc: done == 0);
                if (error is not null)
                {
                    return new MallocBatchResult(result[..done], error);
                }

                result[done++] = pointer;
            }
            catch (Exception e) when (e is OrleansException or TimeoutException)
            {
                // The central heap is moving or slow: hand back what was allocated, and say so (the caller retries).
                return new MallocBatchResult(result[..done], HeapError.Unavailable($"node {_node.Name}'s refill", $"{e.GetType().Name}: {e.Message}"));
            }
        }
    }

    /// <summary>
    /// The fast path: fills <paramref name="dst"/>[from..to) from held leases and the local mcache
    /// under one mutator scope, and stops at the first object that needs the slow path.
    /// </summary>
    private int Fill(HeapPointer[] dst, int from, int to, long size, long[]? sizes, bool noscan, out OutOfMemoryReason? reason)
    {
        reason = null;
        MCache cache = _cache!;
        ushort generation = _node.Generation;
        int i = from;
        using (Heap.EnterMutator())
        {
            for (; i < to; i++)
            {
                long n = sizes?[i] ?? size;
                if (_leases.Count != 0 && TryTakeLeased(n, noscan, out dst[i]))
                {
                    continue;
                }

                if (_leases.Count != 0 && SpanClassOf(n, noscan) is var sc && sc >= 0 && _leases.ContainsKey(sc))
                {
                    break; // an exhausted or revoked lease for this class: the slow path returns it first
                }

                if (!cache.TryMalloc((nuint)n, noscan, out nuint address, out OutOfMemoryReason why))
                {
                    reason = why;
                    break;
                }

                dst[i] = HeapPointer.Create(generation, address);
            }
        }

        _mallocs += i - from;
        return i;
    }

    private bool TryTakeLeased(long size, bool noscan, out HeapPointer pointer)
    {
        int spanClass = SpanClassOf(size, noscan);
        if (spanClass >= 0 && _leases.TryGetValue(spanClass, out HeldLease? lease) && !lease.Revoked && lease.TryTake(out ulong address))
        {
            pointer = HeapPointer.Create(lease.Info.Key.LenderGeneration, address);
            _leasedMallocs++;
            _node.Leases.CountLeasedMallocs(1);
            return true;
        }

        pointer = default;
        return false;
    }

    /// <summary>
    /// The refill path beyond this node's mcentral (<see cref="MallocSlowOnceAsync"/>), and Go's mallocgc at the limit: a
    /// cycle first (Gc/GcNode.cs), out of memory only if that did not help. Only while this call holds no object yet: its
    /// objects are rooted when it returns, so a cycle run while it waits would sweep the ones it already allocated (a
    /// batch past its first object fails at the limit without waiting).
    /// </summary>
    private async Task<(HeapPointer Pointer, HeapError? Error)> MallocSlowAsync(long size, bool noscan, bool mayWaitForGc = true)
    {
        (HeapPointer pointer, HeapError? error) = await MallocSlowOnceAsync(size, noscan);
        if (error is not { Kind: HeapErrorKind.OutOfMemory } || !mayWaitForGc || !Gc.GcGate.InsideGatedCall)
        {
            return (pointer, error);
        }

        Gc.GcNode gc = ServiceProvider.GetRequiredService<Gc.GcNode>();
        if (!await gc.CollectBeforeOutOfMemoryAsync())
        {
            return (pointer, error);
        }

        (pointer, error) = await MallocSlowOnceAsync(size, noscan);
        if (error is { Kind: HeapErrorKind.OutOfMemory })
        {
            gc.CycleDidNotHelp();
        }

        return (pointer, error);
    }

    /// <summary>
    /// The refill path beyond this node's mcentral: return a spent lease, grant, lease, large elsewhere. Out of memory
    /// comes back as the error (a reply, not an exception); only a failed call to the central heap throws.
    /// </summary>
    private async Task<(HeapPointer Pointer, HeapError? Error)> MallocSlowOnceAsync(long size, bool noscan)
    {
        int spanClass = SpanClassOf(size, noscan);
        if (spanClass >= 0 && _leases.Remove(spanClass, out HeldLease? spent))
        {
            await ReturnLeaseAsync(spent);
        }

        var one = new HeapPointer[1];
        if (Fill(one, 0, 1, size, null, noscan, out OutOfMemoryReason? reason) == 1)
        {
            return (one[0], null);
        }

        HeapError? error = null;
        if (reason == OutOfMemoryReason.GrowthLimit)
        {
            _grantsAsked++;
            GrowthGrant grant = await CentralForOneCall().RequestGrowthAsync(_node.Name, _node.Generation, BytesToGrow(size));
            if (grant.Granted)
            {
                // The central heap has applied it on this node already (CentralHeapGrain.GrantAsync, the one route).
                if (Fill(one, 0, 1, size, null, noscan, out _) == 1)
                {
                    return (one[0], null);
                }
            }

            error = grant.Error;
        }

        if (spanClass < 0)
        {
            LargeReply reply = await CentralForOneCall().RequestLargeAsync(_node.Name, size, noscan ? ObjectKind.Noscan : ObjectKind.Pointer);
            if (reply.Pointer is { } pointer)
            {
                _mallocs++;
                return (pointer, null);
            }

            error = reply.Error ?? error;
        }
        else
        {
            LeaseReply reply = await CentralForOneCall().RequestLeaseAsync(_node.Name, _node.Generation, spanClass);
            if (reply.Lease is { } info)
            {
                var lease = new HeldLease(info, _key);
                _leases[spanClass] = lease;
                _node.Leases.AddHeld(lease);
                _leasesTaken++;
                LogLeaseTaken(_logger, _key, info.Key.ToString(), info.LenderNode, spanClass);
                if (TryTakeLeased(size, noscan, out HeapPointer pointer))
                {
                    _mallocs++;
                    return (pointer, null);
                }
            }

            error = reply.Error ?? error;
        }

        return (default, error ?? HeapError.OutOfMemory(reason?.ToString() ?? "Unknown", size, 0,
            $"node {_node.Name} could not allocate {size} bytes and no node could supply them"));
    }

    /// <inheritdoc/>
    public async Task ReturnLeasesAsync()
    {
        HeldLease[] held = _leases.Values.ToArray();
        _leases.Clear();
        foreach (HeldLease? lease in held)
        {
            await ReturnLeaseAsync(lease);
        }
    }

    private async Task ReturnLeaseAsync(HeldLease lease)
    {
        _node.Leases.RemoveHeld(lease.Info.Key);
        if (lease.Revoked)
        {
            return; // the lender died; nothing to give back
        }

        await CentralForOneCall().ReturnLeaseAsync(lease.Info.Key, lease.FreeSlots);
        LogLeaseReturned(_logger, _key, lease.Info.Key.ToString());
    }

    /// <summary>sizeclass &lt;&lt; 1 | noscan for a small size, -1 for a large one.</summary>
    internal static int SpanClassOf(long size, bool noscan) =>
        size is > 0 and <= SizeClasses.MaxSmallSize ? (SizeClasses.ClassOf((nuint)size) << 1) | (noscan ? 1 : 0) : -1;

    /// <summary>Bytes the heap must map to serve <paramref name="size"/>: a span of its class, or the large span.</summary>
    private static long BytesToGrow(long size)
    {
        int spanClass = SpanClassOf(size, true);
        return spanClass >= 0
            ? (long)SizeClasses.PagesOf(spanClass >> 1) * HeapConstants.PageSize
            : (size + HeapConstants.PageMask) & ~(long)HeapConstants.PageMask;
    }

    private HeapError? CheckSize(long size) =>
        size < 0 ? HeapError.InvalidArgument($"size {size} is negative")
        : size > _node.Options.ArenaSize ? HeapError.OutOfMemory("ArenaSize", size, _node.Options.ArenaSize,
            $"{size} bytes is larger than a whole {_node.Options.ArenaSize}-byte arena")
        : null;

    [LoggerMessage(Level = LogLevel.Debug, Message = "mcache {Key} took {Lease} from node {Lender} for span class {SpanClass}")]
    private static partial void LogLeaseTaken(ILogger logger, string key, string lease, string lender, int spanClass);

    [LoggerMessage(Level = LogLevel.Debug, Message = "mcache {Key} returned {Lease}")]
    private static partial void LogLeaseReturned(ILogger logger, string key, string lease);

    [LoggerMessage(Level = LogLevel.Warning, Message = "mcache {Key} could not return its leases while deactivating")]
    private static partial void LogReturnFailed(ILogger logger, Exception exception, string key);
}
