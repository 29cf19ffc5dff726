using ClusterHeap.Contracts;
using ClusterHeap.Grains.Metrics;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Orleans.GrainDirectory;
using Orleans.Runtime;

namespace ClusterHeap.Grains.CentralHeap;

/// <summary>
/// The cluster tier above the node heaps (docs/DESIGN.md §5), one activation per cluster (key 0).
/// This file: node records, slot and generation assignment, growth grants under the cluster memory
/// limit, stats, view and the cluster verifier. CentralHeapGrain.Leases.cs brokers cross-node
/// refills; CentralHeapGrain.Recovery.cs rebuilds the state from the live nodes on activation and
/// reclaims dead nodes. The grain keeps no storage: every fact it must not forget (the last
/// generation, a run-time memory limit) is copied to every node as a <see cref="CentralNote"/>.
/// </summary>
/// <remarks>
/// Invariants (checked by <see cref="VerifyAsync"/>): no two live nodes share a slot; Σ grants ≤ the
/// memory limit (unless the limit was lowered below grants already made); every lease names a live
/// lender and a live lessee. Calls run one at a time (non-reentrant), and the grain only calls heap
/// node grains, which never call back, so there is no cycle.
/// </remarks>
[GrainDirectory(GrainDirectoryName = Directory)]
public sealed partial class CentralHeapGrain : Grain, ICentralHeapGrain
{
    /// <summary>The strongly consistent grain directory that keeps this grain to one activation (see AddClusterHeap).</summary>
    public const string Directory = "clusterheap-central";

    private readonly ClusterHeapOptions _options;
    private readonly IClusterMembershipService _membership;
    private readonly ILocalSiloDetails _silo;
    private readonly ILogger<CentralHeapGrain> _logger;
    private readonly CentralHeapBoard _board;
    private readonly Dictionary<SiloAddress, NodeRecord> _nodes = [];
    private long _memoryLimit;
    private ushort _lastGeneration;
    private long _noteVersion;
    private bool _limitBelowGrants;

    /// <summary>Created by Orleans.</summary>
    public CentralHeapGrain(IOptions<ClusterHeapOptions> options, IClusterMembershipService membership, ILocalSiloDetails silo, ILogger<CentralHeapGrain> logger, CentralHeapBoard board)
    {
        _board = board;
        _options = options.Value;
        _membership = membership;
        _silo = silo;
        _logger = logger;
        _memoryLimit = _options.ClusterMemoryLimit;
    }

    private long TotalGranted => _nodes.Values.Sum(n => n.Granted);

    /// <inheritdoc/>
    public async Task<NodeAssignment> RegisterNodeAsync(NodeRegistration registration)
    {
        await ReclaimSameNameDeadAsync(registration.Name, registration.Silo);
        if (_nodes.Remove(registration.Silo, out NodeRecord? previous))
        {
            LogReregistered(_logger, registration.Name, previous.Slot);
        }

        var used = _nodes.Values.Select(n => n.Slot).Concat(registration.ExcludedSlots).ToHashSet();
        int slot = Enumerable.Range(0, HeapPointer.MaxSlots).FirstOrDefault(s => !used.Contains(s), -1);
        if (slot < 0)
        {
            throw HeapError.InvalidArgument($"no free arena slot for node {registration.Name}: all {HeapPointer.MaxSlots} are taken or excluded").ToException();
        }

        ushort generation = NextGeneration();
        long grant = Math.Max(0, Math.Min(Math.Min(_options.GrantChunk, registration.ArenaSize), Headroom()));
        var node = new NodeRecord(registration.Name, registration.Silo, slot, generation, registration.ArenaSize, registration.Procs) { Granted = grant };
        _nodes[registration.Silo] = node;
        LogRegistered(_logger, node.Name, slot, generation, grant);
        await BroadcastNoteAsync();
        return new NodeAssignment(slot, generation, grant);
    }

    /// <inheritdoc/>
    public Task<NodeInfo[]> GetNodesAsync() =>
        Task.FromResult(_nodes.Values.OrderBy(n => n.Slot).Select(n => n.ToInfo()).ToArray());

    /// <inheritdoc/>
    public async Task<GrowthGrant> RequestGrowthAsync(string node, ushort generation, long bytes)
    {
        NodeRecord? record = FindLive(node, generation);
        if (record is null)
        {
            return new GrowthGrant(false, 0, HeapError.InvalidArgument($"node {node} generation {generation} is not a live node"));
        }

        HeapError? error = await GrantAsync(record, bytes);
        return error is null ? new GrowthGrant(true, record.Granted, null) : new GrowthGrant(false, record.Granted, error);
    }

    /// <summary>
    /// The one route a grant takes after registration: the central heap raises <paramref name="record"/>'s grant
    /// (<see cref="TryGrant"/>) and applies it on the node (IHeapNodeGrain.ApplyGrantAsync) before anyone is told,
    /// whether the node asked for it (growth) or is about to lend for another (a lease, a large object). The
    /// first grant travels in the registration's NodeAssignment, since the heap is created with it.
    /// </summary>
    private async Task<HeapError?> GrantAsync(NodeRecord record, long bytes)
    {
        HeapError? error = TryGrant(record, bytes);
        if (error is null)
        {
            await TryCallAsync(record, async g => { await g.ApplyGrantAsync(record.Granted); return "ok"; });
        }

        return error;
    }

    /// <inheritdoc/>
    public Task<long> GetMemoryLimitAsync() => Task.FromResult(_memoryLimit);

    /// <inheritdoc/>
    public async Task SetMemoryLimitAsync(long bytes)
    {
        if (bytes <= 0)
        {
            throw HeapError.InvalidArgument($"memory limit {bytes} must be positive").ToException();
        }

        _memoryLimit = bytes;
        _limitBelowGrants = TotalGranted > bytes;
        LogLimit(_logger, bytes, TotalGranted);
        await BroadcastNoteAsync();
    }

    /// <inheritdoc/>
    public async Task<ClusterStats> GetStatsAsync()
    {
        NodeRecord[] nodes = _nodes.Values.OrderBy(n => n.Slot).ToArray();
        NodeStats?[] replies = await Task.WhenAll(nodes.Select(n => TryCallAsync<NodeStats>(n, async g => await g.GetStatsAsync())));
        NodeStats[] rows = replies.Where(r => r is not null).Select(r => r!).ToArray();
        string[] unreachable = nodes.Where((n, i) => replies[i] is null).Select(n => n.Name).ToArray();
        return new ClusterStats(NodeStats.Sum(rows), rows, _memoryLimit, TotalGranted, rows.Sum(r => r.ActiveLeasesLent), unreachable);
    }

    /// <inheritdoc/>
    public async Task<CentralView> GetViewAsync() => new CentralView(
        [.. _nodes.Values.OrderBy(n => n.Slot).Select(n => n.ToInfo())],
        [.. (await NodeStatesAsync()).SelectMany(s => s.LeasesLent).OrderBy(l => l.Key.LenderSlot).ThenBy(l => l.Key.LeaseId)],
        _memoryLimit,
        TotalGranted,
        _lastGeneration,
        _silo.SiloAddress);

    /// <summary>What every live node reports of itself (its leases among it); nodes that do not answer are left out.</summary>
    private async Task<NodeState[]> NodeStatesAsync()
    {
        NodeState?[] states = await Task.WhenAll(_nodes.Values.Select(n => TryCallAsync<NodeState>(n, async g => await g.GetStateAsync())));
        return [.. states.Where(s => s is not null).Select(s => s!)];
    }

    /// <inheritdoc/>
    public async Task<VerifyResult[]> VerifyAsync()
    {
        var problems = new List<string>();
        foreach (IGrouping<int, NodeRecord>? group in _nodes.Values.GroupBy(n => n.Slot).Where(g => g.Count() > 1))
        {
            problems.Add($"slot {group.Key} is shared by {string.Join(", ", group.Select(n => n.Name))}");
        }

        if (TotalGranted > _memoryLimit && !_limitBelowGrants)
        {
            problems.Add($"grants {TotalGranted} exceed the memory limit {_memoryLimit}");
        }

        HashSet<SiloAddress> active = ActiveSilos();
        problems.AddRange(_nodes.Values.Where(n => !active.Contains(n.Silo)).Select(n => $"node {n.Name} ({n.Silo}) is not active but owns slot {n.Slot} and {n.Granted} granted bytes"));
        NodeState[] states = await NodeStatesAsync();
        LeaseRecord[] leases = [.. states.SelectMany(s => s.LeasesLent)];
        foreach (LeaseRecord lease in leases.Concat(states.SelectMany(s => s.LeasesHeld)))
        {
            if (FindBySlot(lease.Key.LenderSlot, lease.Key.LenderGeneration) is null || FindLive(lease.LesseeNode, lease.LesseeGeneration) is null)
            {
                problems.Add($"{lease.Key} names a node that is not live (lender {lease.LenderNode}, lessee {lease.LesseeNode})");
            }
        }

        var cluster = new VerifyResult("cluster", problems.Count == 0, problems.Count == 0 ? null : string.Join("; ", problems),
            $"{_nodes.Count} nodes, {leases.Length} leases, {TotalGranted} bytes granted, memory limit {(_memoryLimit == long.MaxValue ? "none" : _memoryLimit + " bytes")}");
        NodeRecord[] nodes = _nodes.Values.OrderBy(n => n.Slot).ToArray();
        VerifyResult?[] replies = await Task.WhenAll(nodes.Select(n => TryCallAsync<VerifyResult>(n, async g => await g.VerifyAsync())));
        return [cluster, .. replies.Select((r, i) => r ?? new VerifyResult(nodes[i].Name, false, $"node {nodes[i].Name} did not answer", ""))];
    }

    /// <summary>Grants <paramref name="record"/> at least <paramref name="bytes"/> more, in chunks; the error says why not.</summary>
    private HeapError? TryGrant(NodeRecord record, long bytes)
    {
        long chunk = Math.Max(1, _options.GrantChunk);
        long want = Math.Max(chunk, (bytes + chunk - 1) / chunk * chunk);
        long arenaRoom = record.ArenaSize - record.Granted;
        if (arenaRoom < bytes)
        {
            return HeapError.OutOfMemory("ArenaExhausted", bytes, record.ArenaSize,
                $"node {record.Name} has {record.Granted} of its {record.ArenaSize}-byte arena granted; {bytes} more do not fit");
        }

        long give = Math.Min(want, Math.Min(arenaRoom, Headroom()));
        if (give < bytes)
        {
            return LimitError(bytes, $"node {record.Name} needs {bytes} more bytes");
        }

        record.Granted += give;
        record.Grants++;
        LogGranted(_logger, record.Name, give, record.Granted, TotalGranted, _memoryLimit);
        return null;
    }

    private HeapError LimitError(long bytes, string what) =>
        HeapError.OutOfMemory("ClusterMemoryLimit", bytes, _memoryLimit,
            $"cluster memory limit of {_memoryLimit} bytes reached: {TotalGranted} bytes granted to {_nodes.Count} nodes, {what}");

    /// <summary>Bytes still grantable under the limit.</summary>
    private long Headroom() => _memoryLimit == long.MaxValue ? long.MaxValue : Math.Max(0, _memoryLimit - TotalGranted);

    private ushort NextGeneration()
    {
        _lastGeneration = (ushort)(_lastGeneration == ushort.MaxValue ? 1 : _lastGeneration + 1);
        return _lastGeneration;
    }

    private NodeRecord? FindLive(string name, ushort generation) =>
        _nodes.Values.FirstOrDefault(n => n.Name == name && n.Generation == generation);

    private NodeRecord? FindBySlot(int slot, ushort generation) =>
        _nodes.Values.FirstOrDefault(n => n.Slot == slot && n.Generation == generation);

    private HashSet<SiloAddress> ActiveSilos() =>
        [.. _membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).Select(m => m.SiloAddress)];

    /// <summary>Copies the durable facts to every live node (see <see cref="CentralNote"/>).</summary>
    private async Task BroadcastNoteAsync()
    {
        var note = new CentralNote(++_noteVersion, _lastGeneration, _memoryLimit);
        await Task.WhenAll(_nodes.Values.Select(n => TryCallAsync(n, async g => { await g.NoteCentralAsync(note); return "ok"; })));
    }

    /// <summary>Calls a node grain, giving up after the node call timeout; null when it failed.</summary>
    private async Task<T?> TryCallAsync<T>(NodeRecord node, Func<IHeapNodeGrain, Task<T?>> call) where T : class
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

    /// <summary>A live node as this grain tracks it.</summary>
    private sealed record NodeRecord(string Name, SiloAddress Silo, int Slot, ushort Generation, long ArenaSize, int Procs)
    {
        public long Granted { get; set; }

        public long Grants { get; set; }

        public NodeInfo ToInfo() => new(Name, Slot, Generation, Silo, Granted, Procs, ArenaSize);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} registered: slot {Slot} generation {Generation}, first grant {Grant} bytes")]
    private static partial void LogRegistered(ILogger logger, string node, int slot, ushort generation, long grant);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} registered again; its slot {Slot} is given back first")]
    private static partial void LogReregistered(ILogger logger, string node, int slot);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Granted node {Node} {Bytes} bytes: its limit is {Granted}, cluster {Total} of {Limit}")]
    private static partial void LogGranted(ILogger logger, string node, long bytes, long granted, long total, long limit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Cluster memory limit set to {Limit} bytes ({Granted} granted)")]
    private static partial void LogLimit(ILogger logger, long limit, long granted);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Call to heap node {Node} failed")]
    private static partial void LogNodeCallFailed(ILogger logger, Exception exception, string node);
}
