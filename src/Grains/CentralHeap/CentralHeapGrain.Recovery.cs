using System.Collections.Immutable;
using ClusterHeap.Contracts;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ClusterHeap.Grains.CentralHeap;

// Recovery: the state is rebuilt from the live nodes whenever the grain activates (so losing its
// silo loses nothing), and a node that membership declares dead is reclaimed: its slot and grant
// are freed, leases it held are reclaimed by their lenders, leases it lent are revoked at their
// lessees.
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
        await RebuildLeasesAsync(live);
        LogRebuilt(_logger, _silo.SiloAddress, _nodes.Count, _leases.Count, _lastGeneration, _memoryLimit);
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
    /// A lease is live when its lessee holds it and its lender is live. One only the lender reports
    /// (the lessee died or dropped it mid-return) is reclaimed; one whose lender is gone is revoked.
    /// </summary>
    private async Task RebuildLeasesAsync(NodeState[] live)
    {
        var lent = live.SelectMany(s => s.LeasesLent.Select(l => (Lease: l, s.Silo))).ToDictionary(x => x.Lease.Key, x => x.Silo);
        var revoke = new List<(NodeRecord Lessee, LeaseKey Key)>();
        foreach (NodeState lessee in live)
        {
            NodeRecord lesseeRecord = _nodes[lessee.Silo];
            foreach (LeaseRecord held in lessee.LeasesHeld)
            {
                NodeRecord? lender = FindBySlot(held.Key.LenderSlot, held.Key.LenderGeneration);
                if (lender is not null && lent.Remove(held.Key))
                {
                    _leases[held.Key] = new CentralLease(held with { LesseeNode = lesseeRecord.Name }, lender.Silo, lessee.Silo);
                }
                else
                {
                    revoke.Add((lesseeRecord, held.Key));
                }
            }
        }

        foreach (IGrouping<NodeRecord, (NodeRecord Lessee, LeaseKey Key)> group in revoke.GroupBy(r => r.Lessee))
        {
            LeaseKey[] keys = [.. group.Select(r => r.Key)];
            await TryCallAsync(group.Key, async g => { await g.RevokeLeasesAsync(keys); return "ok"; });
        }

        foreach ((LeaseKey key, SiloAddress? lenderSilo) in lent)
        {
            if (_nodes.TryGetValue(lenderSilo, out NodeRecord? lender))
            {
                await TryCallAsync(lender, async g => { await g.ReclaimLeaseAsync(key.LeaseId); return "ok"; });
            }
        }
    }

    /// <inheritdoc/>
    public async Task NodeDiedAsync(SiloAddress silo)
    {
        if (!_nodes.Remove(silo, out NodeRecord? dead))
        {
            return;
        }

        LogNodeDied(_logger, dead.Name, dead.Slot, dead.Generation, dead.Granted);
        CentralLease[] held = _leases.Values.Where(l => l.Lessee == silo).ToArray();
        CentralLease[] lent = _leases.Values.Where(l => l.Lender == silo).ToArray();
        foreach (CentralLease? lease in held.Concat(lent))
        {
            _leases.Remove(lease.Record.Key);
        }

        foreach (CentralLease? lease in held)
        {
            if (_nodes.TryGetValue(lease.Lender, out NodeRecord? lender))
            {
                await TryCallAsync(lender, async g => { await g.ReclaimLeaseAsync(lease.Record.Key.LeaseId); return "ok"; });
            }
        }

        foreach (IGrouping<SiloAddress, CentralLease> group in lent.GroupBy(l => l.Lessee))
        {
            if (_nodes.TryGetValue(group.Key, out NodeRecord? lessee))
            {
                LeaseKey[] keys = [.. group.Select(l => l.Record.Key)];
                await TryCallAsync(lessee, async g => { await g.RevokeLeasesAsync(keys); return "ok"; });
            }
        }
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

    [LoggerMessage(Level = LogLevel.Information, Message = "Central heap activated on {Silo}, rebuilt from live nodes: {Nodes} nodes, {Leases} leases, last generation {Generation}, memory limit {Limit}")]
    private static partial void LogRebuilt(ILogger logger, SiloAddress silo, int nodes, int leases, ushort generation, long limit);

    [LoggerMessage(Level = LogLevel.Information, Message = "Central heap on {Silo} deactivating: {Reason} {Description}")]
    private static partial void LogDeactivating(ILogger logger, SiloAddress silo, DeactivationReasonCode reason, string description);

    [LoggerMessage(Level = LogLevel.Error, Message = "Node {Node} reports slot {Slot}, which another live node owns; it is left out")]
    private static partial void LogDuplicateSlot(ILogger logger, string node, int slot);

    [LoggerMessage(Level = LogLevel.Information, Message = "Node {Node} died: slot {Slot} (generation {Generation}) and {Granted} granted bytes reclaimed")]
    private static partial void LogNodeDied(ILogger logger, string node, int slot, ushort generation, long granted);
}
