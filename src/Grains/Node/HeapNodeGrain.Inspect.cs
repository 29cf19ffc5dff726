using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Grains.Node;

// Looking at a node from outside: MemStats, the span listing, the heap map and the verifier.
public sealed partial class HeapNodeGrain
{
    /// <inheritdoc/>
    public Task<NodeStats> GetStatsAsync() => Task.FromResult(_node.ReadStats());

    /// <inheritdoc/>
    public Task<SpanRow[]> GetSpansAsync(int sizeClass = -1) =>
        Task.FromResult(Heap.GetSpans(sizeClass).Select(s => new SpanRow(
            (ulong)s.Start, (int)s.Pages, s.InUse, s.SizeClass, s.Noscan, s.ElemSize,
            s.Objects, s.Live, s.Cache, s.LeaseId, (int)s.ReleasedPages)
        { Unswept = s.Unswept }).ToArray());

    /// <inheritdoc/>
    public Task<HeapMap> GetHeapMapAsync()
    {
        NodeHeap heap = Heap;
        HeapMapRow[] rows = heap.GetSpans().Select(s => new HeapMapRow(
            (ulong)s.Start, (int)s.Pages, s.SizeClass, s.Objects, s.Live,
            s.InUse
                ? (s.LeaseId != 0 ? MapState.Leased : s.Unswept ? MapState.Unswept : MapState.InUse)
                : (s.ReleasedPages > 0 && s.ReleasedPages >= s.Pages ? MapState.Released : MapState.Free)))
            .OrderBy(r => r.Start)
            .ToArray();
        return Task.FromResult(new HeapMap(_node.Name, _node.Slot, (ulong)heap.ArenaStart, (ulong)heap.ArenaUsed,
            (ulong)heap.ArenaEnd, HeapConstants.PageSize, rows));
    }

    /// <inheritdoc/>
    public Task<VerifyResult> VerifyAsync()
    {
        VerifyReport report = Heap.Verify();
        string? problem = report.Ok ? null : report.Problem;
        return Task.FromResult(new VerifyResult(_node.Name, problem is null, problem, report.ToString()));
    }

    /// <inheritdoc/>
    public Task<long> ScavengeAsync(bool force = false) => Task.FromResult(Heap.Scavenge(force));
}
