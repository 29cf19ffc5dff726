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
        [.. _node.Leases.Lent],
        [.. _node.Leases.Held.Where(l => !l.Revoked).Select(l => l.ToRecord(_node.Name))],
        _node.Options.ArenaSize,
        _node.Options.ProcessorsPerNode));

    /// <inheritdoc/>
    public Task<SpanLeaseInfo?> LendSpanAsync(int spanClass, string lesseeNode)
    {
        SpanLease? lease;
        using (Heap.EnterMutator())
        {
            lease = Heap.LendSpan(spanClass);
        }

        if (lease is null)
        {
            return Task.FromResult<SpanLeaseInfo?>(null);
        }

        var key = new LeaseKey(_node.Slot, _node.Generation, lease.LeaseId);
        _node.Leases.AddLent(new LeaseRecord(key, _node.Name, lesseeNode, spanClass));
        LogLent(_logger, _node.Name, key.ToString(), lesseeNode, spanClass);
        return Task.FromResult<SpanLeaseInfo?>(new SpanLeaseInfo(
            key, _node.Name, spanClass, (ulong)lease.SpanBase, lease.ElemSize, lease.Objects, lease.FreeSlots));
    }

    /// <inheritdoc/>
    public Task ReturnLeaseAsync(long leaseId, ulong[] unusedSlots)
    {
        if (_node.Leases.RemoveLent(leaseId))
        {
            using (Heap.EnterMutator())
            {
                Heap.ReturnLease(leaseId, unusedSlots);
            }
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task ReclaimLeaseAsync(long leaseId)
    {
        if (_node.Leases.RemoveLent(leaseId))
        {
            using (Heap.EnterMutator())
            {
                Heap.ReclaimLease(leaseId);
            }

            LogReclaimed(_logger, _node.Name, leaseId);
        }

        return Task.CompletedTask;
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
            try
            {
                nuint address = _largeCache.Malloc((nuint)size, kind == ObjectKind.Noscan);
                return Task.FromResult<HeapPointer?>(_node.PointerTo(address));
            }
            catch (HeapOutOfMemoryException)
            {
                return Task.FromResult<HeapPointer?>(null);
            }
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} reclaimed lease {LeaseId} from a dead lessee")]
    private static partial void LogReclaimed(ILogger logger, string node, long leaseId);
}
