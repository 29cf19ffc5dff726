using ClusterHeap.Contracts;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ClusterHeap.Grains.CentralHeap;

// Cross-node refills (docs/DESIGN.md §5, "Leases"): when a node cannot refill a span class (its arena is
// full, or the limit leaves it no grant), find another node that can, have it lend one span to the
// asking mcache. The central heap brokers leases and keeps no record of them: the lender's heap holds the lease
// (NodeHeap's lease table, lessee included), the lessee's node holds its side (LeaseBook), and whatever the
// central heap needs to know about leases (the view, the count, who to tell when a node dies) it asks them.
// A lender that cannot grow gets a grant first when the limit allows. Large objects cannot be leased by the
// span; another node allocates them instead.
public sealed partial class CentralHeapGrain
{

    /// <inheritdoc/>
    public async Task<LeaseReply> RequestLeaseAsync(string lesseeNode, ushort lesseeGeneration, int spanClass)
    {
        NodeRecord? lessee = FindLive(lesseeNode, lesseeGeneration);
        if (lessee is null)
        {
            return new LeaseReply(null, HeapError.InvalidArgument($"node {lesseeNode} generation {lesseeGeneration} is not a live node"));
        }

        if (spanClass < 2 || spanClass >= SizeClasses.NumSpanClasses)
        {
            return new LeaseReply(null, HeapError.InvalidArgument($"span class {spanClass} cannot be leased (small classes only)"));
        }

        long spanBytes = (long)SizeClasses.PagesOf(spanClass >> 1) * HeapConstants.PageSize;
        foreach (NodeRecord lender in Lenders(lessee))
        {
            SpanLeaseInfo? info = await TryCallAsync(lender, g => g.LendSpanAsync(spanClass, lessee.Name, lessee.Generation));
            if (info is null && await GrantAsync(lender, spanBytes) is null)
            {
                info = await TryCallAsync(lender, g => g.LendSpanAsync(spanClass, lessee.Name, lessee.Generation));
            }

            if (info is not null)
            {
                LogLeased(_logger, info.Key.ToString(), lender.Name, lessee.Name, spanClass);
                return new LeaseReply(info, null);
            }
        }

        return new LeaseReply(null, NoLenderError(spanBytes, $"node {lesseeNode} needs a span of class {spanClass}"));
    }

    /// <inheritdoc/>
    public async Task ReturnLeaseAsync(LeaseKey lease, ulong[] unusedSlots)
    {
        NodeRecord? lender = FindBySlot(lease.LenderSlot, lease.LenderGeneration);
        if (lender is not null)
        {
            await TryCallAsync(lender, async g => { await g.ReturnLeaseAsync(lease, unusedSlots); return "ok"; });
        }
    }

    /// <inheritdoc/>
    public async Task<LargeReply> RequestLargeAsync(string node, long size, ObjectKind kind)
    {
        NodeRecord? asker = _nodes.Values.FirstOrDefault(n => n.Name == node);
        long bytes = (size + HeapConstants.PageMask) & ~(long)HeapConstants.PageMask;
        foreach (NodeRecord lender in Lenders(asker))
        {
            HeapPointer? pointer = await TryCallValueAsync(lender, g => g.MallocLargeAsync(size, kind));
            if (pointer is null && await GrantAsync(lender, bytes) is null)
            {
                pointer = await TryCallValueAsync(lender, g => g.MallocLargeAsync(size, kind));
            }

            if (pointer is not null)
            {
                return new LargeReply(pointer, null);
            }
        }

        return new LargeReply(null, NoLenderError(bytes, $"node {node} needs a {size}-byte large object"));
    }

    /// <summary>Every live node but the asker, the one with the most arena left ungranted first.</summary>
    private IEnumerable<NodeRecord> Lenders(NodeRecord? asker) =>
        _nodes.Values.Where(n => n != asker).OrderByDescending(n => n.ArenaSize - n.Granted).ThenBy(n => n.Slot).ToArray();

    private HeapError NoLenderError(long bytes, string what) =>
        Headroom() < bytes
            ? LimitError(bytes, $"{what} and no other node could lend it")
            : HeapError.OutOfMemory("ArenaExhausted", bytes, _nodes.Values.Sum(n => n.ArenaSize),
                $"{what}; every node's arena is full ({_nodes.Count} nodes, {_nodes.Values.Sum(n => n.ArenaSize)} arena bytes in all)");

    private async Task<HeapPointer?> TryCallValueAsync(NodeRecord node, Func<IHeapNodeGrain, Task<HeapPointer?>> call)
    {
        try
        {
            return await call(GrainFactory.GetGrain<IHeapNodeGrain>(node.Name)).WaitAsync(_options.NodeCallTimeout);
        }
        catch (Exception e)
        {
            LogNodeCallFailed(_logger, e, node.Name);
            return null;
        }
    }

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Lease}: node {Lender} lends span class {SpanClass} to node {Lessee}")]
    private static partial void LogLeased(ILogger logger, string lease, string lender, string lessee, int spanClass);
}
