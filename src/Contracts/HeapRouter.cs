namespace ClusterHeap.Contracts;

/// <summary>
/// Client-side routing of pointers to their owner's heap node grain. A pointer's slot names the
/// owner (docs/DESIGN.md §5); the router keeps the central heap's slot table and refreshes it once when a
/// pointer names a slot or generation it does not know, before declaring the node gone. Node
/// grains check slot and generation again, so a stale table can delay an answer, never misroute one.
/// Thread-safe; share one per client.
/// </summary>
public sealed class HeapRouter(IGrainFactory grains)
{
    private readonly IGrainFactory _grains = grains;
    // The grain reference is made once per node and table: GetGrain resolves the interface type by
    // reflection, which cost 6 % of a stress client's CPU when it was called per pointer.
    private volatile Dictionary<int, (NodeInfo Info, IHeapNodeGrain Grain)> _bySlot = [];

    /// <summary>The live nodes as last fetched.</summary>
    public IReadOnlyCollection<NodeInfo> Nodes => [.. _bySlot.Values.Select(n => n.Info)];

    /// <summary>The central heap grain.</summary>
    public ICentralHeapGrain CentralHeap => _grains.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap);

    /// <summary>Fetches the slot table from the central heap.</summary>
    public async Task RefreshAsync()
    {
        NodeInfo[] nodes = await CentralHeap.GetNodesAsync();
        _bySlot = nodes.ToDictionary(n => n.Slot, n => (n, _grains.GetGrain<IHeapNodeGrain>(n.Name)));
    }

    /// <summary>The owner of <paramref name="pointer"/>, or the node-gone error.</summary>
    public async ValueTask<(IHeapNodeGrain? Node, HeapError? Error)> TryResolveAsync(HeapPointer pointer)
    {
        int slot = pointer.Slot;
        if (!Matches(_bySlot, pointer, slot))
        {
            await RefreshAsync();
        }

        Dictionary<int, (NodeInfo Info, IHeapNodeGrain Grain)> table = _bySlot;
        if (slot < 0 || !table.TryGetValue(slot, out (NodeInfo Info, IHeapNodeGrain Grain) entry))
        {
            return (null, HeapError.NodeGone(pointer, HeapError.UnknownSlot, $"no live node owns slot {slot}"));
        }

        NodeInfo node = entry.Info;
        if (node.Generation != pointer.Generation)
        {
            return (null, HeapError.NodeGone(pointer, HeapError.StaleGeneration,
                $"slot {slot} is now node {node.Name} generation {node.Generation}, the pointer has generation {pointer.Generation}"));
        }

        return (entry.Grain, null);
    }

    /// <summary>The live node that owns <paramref name="pointer"/> (its slot at its generation), or null when none does.</summary>
    public async ValueTask<NodeInfo?> OwnerAsync(HeapPointer pointer)
    {
        int slot = pointer.Slot;
        if (!Matches(_bySlot, pointer, slot))
        {
            await RefreshAsync();
        }

        Dictionary<int, (NodeInfo Info, IHeapNodeGrain Grain)> table = _bySlot;
        return Matches(table, pointer, slot) ? table[slot].Info : null;
    }

    /// <summary>The owner of <paramref name="pointer"/>; throws <see cref="NodeGoneException"/>.</summary>
    public async ValueTask<IHeapNodeGrain> ResolveAsync(HeapPointer pointer)
    {
        (IHeapNodeGrain? node, HeapError? error) = await TryResolveAsync(pointer);
        return node ?? throw error!.ToException();
    }

    /// <summary>Frees at the owner.</summary>
    public async Task FreeAsync(HeapPointer pointer) => await (await ResolveAsync(pointer)).FreeAsync(pointer);

    /// <summary>Reads at the owner.</summary>
    public async Task<byte[]> ReadAsync(HeapPointer pointer, int length) => await (await ResolveAsync(pointer)).ReadAsync(pointer, length);

    /// <summary>Writes at the owner.</summary>
    public async Task WriteAsync(HeapPointer pointer, byte[] data) => await (await ResolveAsync(pointer)).WriteAsync(pointer, data);

    /// <summary>Frees many pointers, one batch call per owner; item i of the reply is pointer i's error or null.</summary>
    public async Task<HeapError?[]> FreeBatchAsync(HeapPointer[] pointers)
    {
        var errors = new HeapError?[pointers.Length];
        var groups = new Dictionary<IHeapNodeGrain, List<int>>();
        for (int i = 0; i < pointers.Length; i++)
        {
            (IHeapNodeGrain? node, HeapError? error) = await TryResolveAsync(pointers[i]);
            if (node is null)
            {
                errors[i] = error;
                continue;
            }

            if (!groups.TryGetValue(node, out List<int>? list))
            {
                groups[node] = list = [];
            }

            list.Add(i);
        }

        await Task.WhenAll(groups.Select(async g =>
        {
            HeapError?[] replies = await g.Key.FreeBatchAsync(new PointerBatch([.. g.Value.Select(i => pointers[i])]));
            for (int j = 0; j < replies.Length; j++)
            {
                errors[g.Value[j]] = replies[j];
            }
        }));
        return errors;
    }

    private static bool Matches(Dictionary<int, (NodeInfo Info, IHeapNodeGrain Grain)> table, HeapPointer pointer, int slot) =>
        slot >= 0 && table.TryGetValue(slot, out (NodeInfo Info, IHeapNodeGrain Grain) node) && node.Info.Generation == pointer.Generation;
}
