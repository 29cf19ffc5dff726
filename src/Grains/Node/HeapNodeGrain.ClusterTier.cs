using ClusterHeap.Contracts;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;

namespace ClusterHeap.Grains.Node;

// The heap node grain's side of the cluster tier: what the central heap grain asks of a node.
// Lender side of leases (LendSpan / ReturnLease / ReclaimLease), lessee side revocation, grants,
// the durable-facts note, large allocations on behalf of a full node, and the rebuild report.
public sealed partial class HeapNodeGrain
{
    private MCache? _largeCache;

    /// <inheritdoc/>
    public Task<NodeState> GetStateAsync() => Task.FromResult(new NodeState(
        _node.Name,
        _node.Silo,
        _node.Assigned,
        _node.Slot,
        _node.Generation,
        _node.Granted,
        _node.Note,
        LeasesLent(),
        [.. _node.Leases.Held.Where(l => !l.Revoked).Select(l => l.ToRecord(_node.Name, _node.Generation))],
        _node.Options.ArenaSize,
        _node.Options.ProcessorsPerNode,
        _node.Ready.IsCompletedSuccessfully ? _node.Heap.LastCycle?.Number ?? 0 : 0,
        _node.LastGcCycle));

    /// <summary>The heap's lease table (the one lender-side record) as the cluster names its leases.</summary>
    private LeaseRecord[] LeasesLent() =>
        [.. Heap.LentLeases.Select(l => new LeaseRecord(Key(l.LeaseId), _node.Name, l.Lessee.Node, l.SpanClass, l.Lessee.Generation))];

    private LeaseKey Key(long leaseId) => new(_node.Slot, _node.Generation, leaseId);

    /// <summary>True when <paramref name="key"/> names a lease of this node's heap (this slot, this generation).</summary>
    private bool IsMine(LeaseKey key) => key.LenderSlot == _node.Slot && key.LenderGeneration == _node.Generation;

    /// <inheritdoc/>
    public Task<SpanLeaseInfo?> LendSpanAsync(int spanClass, string lesseeNode, ushort lesseeGeneration)
    {
        SpanLease? lease;
        using (Heap.EnterMutator())
        {
            lease = Heap.LendSpan(spanClass, new LesseeId(lesseeNode, lesseeGeneration));
        }

        if (lease is null)
        {
            return Task.FromResult<SpanLeaseInfo?>(null);
        }

        LeaseKey key = Key(lease.LeaseId);
        LogLent(_logger, _node.Name, key.ToString(), lesseeNode, spanClass);
        return Task.FromResult<SpanLeaseInfo?>(new SpanLeaseInfo(
            key, _node.Name, spanClass, (ulong)lease.SpanBase, lease.ElemSize, lease.Objects, lease.FreeSlots));
    }

    /// <inheritdoc/>
    public Task ReturnLeaseAsync(LeaseKey lease, ulong[] unusedSlots)
    {
        if (IsMine(lease))
        {
            using (Heap.EnterMutator())
            {
                Heap.TryReturnLease(lease.LeaseId, unusedSlots);
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task ReclaimLeaseAsync(LeaseKey lease)
    {
        if (IsMine(lease))
        {
            Reclaim(lease.LeaseId);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task ForgetNodeAsync(string name, int slot, ushort generation)
    {
        _node.Leases.RevokeFrom(slot, generation);
        var dead = new LesseeId(name, generation);
        foreach (LentLease lease in Heap.LentLeases.Where(l => l.Lessee == dead))
        {
            Reclaim(lease.LeaseId);
        }

        return Task.CompletedTask;
    }

    private void Reclaim(long leaseId)
    {
        bool reclaimed;
        using (Heap.EnterMutator())
        {
            reclaimed = Heap.TryReclaimLease(leaseId);
        }

        if (reclaimed)
        {
            LogReclaimed(_logger, _node.Name, Key(leaseId).ToString());
        }
    }

    /// <inheritdoc/>
    public Task RevokeLeasesAsync(LeaseKey[] leases)
    {
        foreach (LeaseKey key in leases)
        {
            _node.Leases.Revoke(key);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task ApplyGrantAsync(long growthLimit)
    {
        _node.ApplyGrant(growthLimit);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task NoteCentralAsync(CentralNote note)
    {
        _node.KeepNote(note);
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task<HeapPointer?> MallocLargeAsync(long size, ObjectKind kind)
    {
        if (size < 0 || size > _node.Options.ArenaSize)
        {
            return Task.FromResult<HeapPointer?>(null);
        }

        using (Heap.EnterMutator())
        {
            _largeCache ??= Heap.CreateCache();
            return Task.FromResult(_largeCache.TryMalloc((nuint)size, kind == ObjectKind.Noscan, out nuint address, out _)
                ? _node.PointerTo(address)
                : (HeapPointer?)null);
        }
    }

    private void ReleaseLargeCache()
    {
        if (_largeCache is not null)
        {
            Heap.ReleaseCache(_largeCache);
            _largeCache = null;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "Node {Node} lent {Lease} to node {Lessee} (span class {SpanClass})")]
    private static partial void LogLent(ILogger logger, string node, string lease, string lessee, int spanClass);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} reclaimed {Lease} from a lessee that dropped it")]
    private static partial void LogReclaimed(ILogger logger, string node, string lease);
}
