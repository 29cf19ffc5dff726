using System.Collections.Immutable;
using ClusterHeap.Contracts;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ClusterHeap.Grains.CentralHeap;

// Recovery: the state is rebuilt from the live nodes whenever the grain activates (so losing its
// silo loses nothing: the collector's cycle ids and count included, CentralHeapGrain.GcHistory.cs), and a node that membership declares dead is reclaimed: its slot and grant
// are freed, leases it held are reclaimed by their lenders, leases it lent are revoked at their
// lessees (each survivor settles its own side; the central heap keeps no lease table).
public sealed partial class CentralHeapGrain
{
    /// <inheritdoc/>
    public override async Task OnActivateAsync(CancellationToken cancellationToken)
    {
        ClusterMember[] members = _membership.CurrentSnapshot.Members.Values.Where(m => m.Status == SiloStatus.Active).ToArray();
        NodeState?[] states = await Task.WhenAll(members.Select(async m =>
        {
            try
            {
                NodeState state = await GrainFactory.GetGrain<IHeapNodeGrain>(m.Name).GetStateAsync().WaitAsync(_options.NodeCallTimeout, cancellationToken);
                return state.Assigned && state.Silo == m.SiloAddress ? state : null;
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                LogNodeCallFailed(_logger, e, m.Name);
                return null;
            }
        }));

        NodeState[] live = states.Where(s => s is not null).Select(s => s!).ToArray();
        foreach (NodeState? state in live)
        {
            if (_nodes.Values.Any(n => n.Slot == state.Slot))
            {
                LogDuplicateSlot(_logger, state.Name, state.Slot);
                continue;
            }

            _nodes[state.Silo] = new NodeRecord(state.Name, state.Silo, state.Slot, state.Generation, state.ArenaSize, state.Procs) { Granted = state.Granted };
        }

        CentralNote[] notes = live.Select(s => s.Note).ToArray();
        _lastGeneration = live.Select(s => s.Generation).Concat(notes.Select(n => n.LastGeneration)).DefaultIfEmpty((ushort)0).Max();
        _noteVersion = notes.Select(n => n.Version).DefaultIfEmpty(0).Max();
        CentralNote? newest = notes.Where(n => n.Version > 0).MaxBy(n => n.Version);
        if (newest is not null)
        {
            _memoryLimit = newest.MemoryLimit;
        }

        _limitBelowGrants = TotalGranted > _memoryLimit;
        RebuildGcHistory(live);
        int leases = await ReconcileLeasesAsync(live);
        LogRebuilt(_logger, _silo.SiloAddress, _nodes.Count, leases, _lastGeneration, _memoryLimit, _lastCycleId, _numGc);
        PostView();
    }

    /// <inheritdoc/>
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        // Nothing to save (every fact lives on the nodes); the log says why, since a central heap that
        // goes away unasked is worth knowing about.
        LogDeactivating(_logger, _silo.SiloAddress, reason.ReasonCode, reason.Description);
        _board.Withdraw(this);
        return Task.CompletedTask;
    }

    /// <summary>
    /// Settles the leases the live nodes report, with no table of its own: a lease is live when its lessee holds it
    /// and its lender lent it. One only the lender reports (the lessee died, or dropped it mid-return while the
    /// central heap moved) is reclaimed; one whose lender is gone or does not report it is revoked. Returns how many
    /// are live.
    /// </summary>
    private async Task<int> ReconcileLeasesAsync(NodeState[] live)
    {
        var lent = live.SelectMany(s => s.LeasesLent).ToDictionary(l => l.Key);
        var revoke = new List<(NodeRecord Lessee, LeaseKey Key)>();
        int settled = 0;
        foreach (NodeState lessee in live)
        {
            foreach (LeaseRecord held in lessee.LeasesHeld)
            {
                if (lent.Remove(held.Key))
                {
                    settled++;
                }
                else
                {
                    revoke.Add((_nodes[lessee.Silo], held.Key));
                }
            }
        }

        foreach (IGrouping<NodeRecord, (NodeRecord Lessee, LeaseKey Key)> group in revoke.GroupBy(r => r.Lessee))
        {
            LeaseKey[] keys = [.. group.Select(r => r.Key)];
            await TryCallAsync(group.Key, async g => { await g.RevokeLeasesAsync(keys); return "ok"; });
        }

        foreach (LeaseKey key in lent.Keys)
        {
            if (FindBySlot(key.LenderSlot, key.LenderGeneration) is { } lender)
            {
                await TryCallAsync(lender, async g => { await g.ReclaimLeaseAsync(key); return "ok"; });
            }
        }

        return settled;
    }

    /// <inheritdoc/>
    public Task NodeLeftAsync(SiloAddress silo)
    {
        // The node returned what it held and revoked what it lent before it called (HeapNodeService.StopAsync):
        // nobody else has anything to settle, and while a whole cluster stops nobody should be asked to.
        if (_nodes.Remove(silo, out NodeRecord? left))
        {
            LogNodeDied(_logger, left.Name, left.Slot, left.Generation, left.Granted);
        }

        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public async Task NodeDiedAsync(SiloAddress silo)
    {
        if (!_nodes.Remove(silo, out NodeRecord? dead))
        {
            return;
        }

        LogNodeDied(_logger, dead.Name, dead.Slot, dead.Generation, dead.Granted);
        // Every survivor settles its own side: a lender reclaims what it lent to the dead node, a lessee revokes what
        // it holds from it. The central heap has no list of those leases to consult; the survivors do. (A node that
        // leaves in good order settles its own and says NodeLeft instead.)
        await Task.WhenAll(_nodes.Values.Select(n =>
            TryCallAsync(n, async g => { await g.ForgetNodeAsync(dead.Name, dead.Slot, dead.Generation); return "ok"; })));
    }

    /// <summary>A silo registering under a name whose old silo membership already declared dead: reclaim the old one now.</summary>
    private async Task ReclaimSameNameDeadAsync(string name, SiloAddress silo)
    {
        ImmutableDictionary<SiloAddress, ClusterMember> members = _membership.CurrentSnapshot.Members;
        foreach (NodeRecord? old in _nodes.Values.Where(n => n.Name == name && n.Silo != silo).ToArray())
        {
            if (members.TryGetValue(old.Silo, out ClusterMember? member) && member.Status == SiloStatus.Dead)
            {
                await NodeDiedAsync(old.Silo);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Central heap activated on {Silo}, rebuilt from live nodes: {Nodes} nodes, {Leases} leases, last generation {Generation}, memory limit {Limit}, last gc cycle id {Cycle}, NumGC {NumGc}")]
    private static partial void LogRebuilt(ILogger logger, SiloAddress silo, int nodes, int leases, ushort generation, long limit, long cycle, long numGc);

    [LoggerMessage(Level = LogLevel.Information, Message = "Central heap on {Silo} deactivating: {Reason} {Description}")]
    private static partial void LogDeactivating(ILogger logger, SiloAddress silo, DeactivationReasonCode reason, string description);

    [LoggerMessage(Level = LogLevel.Error, Message = "Node {Node} reports slot {Slot}, which another live node owns; it is left out")]
    private static partial void LogDuplicateSlot(ILogger logger, string node, int slot);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} died: slot {Slot} (generation {Generation}) and {Granted} granted bytes reclaimed")]
    private static partial void LogNodeDied(ILogger logger, string node, int slot, ushort generation, long granted);
}
