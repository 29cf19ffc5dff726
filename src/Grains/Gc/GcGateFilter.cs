using System.Runtime.InteropServices;
using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The collector's hooks on the data path (docs/DESIGN.md §12), as one incoming call filter so the grains stay as they
/// are. For a call a client made to change the object graph (malloc, free, write, root, release, link) it passes the
/// node's <see cref="GcGate"/> (so a stopped world runs none); after a malloc it roots the returned pointers for the
/// calling client (RequestContext <see cref="GcKeys.Client"/>) on their owner node and takes the pacer's shouldhelpgc
/// point; after a free it drops the freed objects' roots. Calls one grain makes to another as part of a client's call
/// (a remote stamp, a lease, a large allocation elsewhere) pass ungated: their client call holds the gate already, and
/// gating them would deadlock two nodes stopping at once.
/// </summary>
internal sealed class GcGateFilter(GcNode gc, IGrainFactory grains) : IIncomingGrainCallFilter
{
    private enum Hook : byte { None, Gate, Malloc, MallocBatch, Free, FreeBatch, EndsFree, OnBehalf }

    /// <inheritdoc/>
    public async Task Invoke(IIncomingGrainCallContext context)
    {
        Hook hook = HookOf(context);
        if (hook == Hook.None)
        {
            await context.Invoke();
            return;
        }

        bool gated = context.SourceId is { } source && GrainTypePrefix.IsClient(source);
        if (hook == Hook.OnBehalf)
        {
            await gc.WhenNoStopTheWorldSession;
            await context.Invoke();
            return;
        }

        if (!gated)
        {
            await context.Invoke();
            _ = AfterCall(context, hook, rootFor: null);   // frees only: roots are taken for clients
            return;
        }

        await gc.Gate.EnterAsync();
        GcGate.InsideGatedCall = true;
        try
        {
            await context.Invoke();
            string client = RequestContext.Get(GcKeys.Client) as string ?? GcKeys.Anonymous;
            Task? remote = AfterCall(context, hook, client);
            if (remote is not null)
            {
                await remote;
            }
        }
        finally
        {
            gc.Gate.Exit();
        }
    }

    private static Hook HookOf(IIncomingGrainCallContext context) => context.Grain switch
    {
        IMCacheGrain => context.MethodName switch
        {
            nameof(IMCacheGrain.MallocAsync) => Hook.Malloc,
            nameof(IMCacheGrain.MallocBatchAsync) or nameof(IMCacheGrain.MallocSizesAsync) or nameof(IMCacheGrain.MallocStampedAsync) => Hook.MallocBatch,
            nameof(IMCacheGrain.ReadEndsAndFreeAsync) => Hook.EndsFree,
            _ => Hook.None,
        },
        IHeapNodeGrain => context.MethodName switch
        {
            nameof(IHeapNodeGrain.FreeAsync) => Hook.Free,
            nameof(IHeapNodeGrain.FreeBatchAsync) => Hook.FreeBatch,
            nameof(IHeapNodeGrain.ReadEndsAndFreeAsync) => Hook.EndsFree,
            nameof(IHeapNodeGrain.WriteAsync) or nameof(IHeapNodeGrain.WriteBatchAsync) => Hook.Gate,
            nameof(IHeapNodeGrain.MallocLargeAsync) or nameof(IHeapNodeGrain.LendSpanAsync) => Hook.OnBehalf,
            _ => Hook.None,
        },
        IGcNodeGrain => context.MethodName switch
        {
            nameof(IGcNodeGrain.AddRootsAsync) or nameof(IGcNodeGrain.ReleaseRootsAsync) or nameof(IGcNodeGrain.LinkAsync) => Hook.Gate,
            _ => Hook.None,
        },
        _ => Hook.None,
    };

    /// <summary>Roots a malloc's pointers (local ones here, others at their owners: the task returned) or drops freed ones.</summary>
    private Task? AfterCall(IIncomingGrainCallContext context, Hook hook, string? rootFor)
    {
        switch (hook)
        {
            case Hook.Malloc when rootFor is not null && context.Result is HeapPointer p:
                return Root(rootFor, new ReadOnlySpan<HeapPointer>(in p));
            case Hook.MallocBatch when rootFor is not null && context.Result is MallocBatchResult r:
                return Root(rootFor, r.Pointers);
            case Hook.Free when context.Request.GetArgument(0) is HeapPointer p:
                gc.Roots.Freed(p.Value);
                return null;
            case Hook.FreeBatch when context.Request.GetArgument(0) is PointerBatch b && context.Result is HeapError?[] errors:
                Freed(b.Pointers, errors);
                return null;
            case Hook.EndsFree when context.Request.GetArgument(0) is EndsFreeRequest q && context.Result is EndsFreeResult e:
                Freed(q.Pointers, e.Errors);
                return null;
            default:
                return null;
        }
    }

    private void Freed(ReadOnlySpan<HeapPointer> pointers, HeapError?[]? errors)
    {
        ClientRoots roots = gc.Roots;
        for (int i = 0; i < pointers.Length; i++)
        {
            if (errors is null || errors[i] is null)
            {
                roots.Freed(pointers[i].Value);
            }
        }
    }

    private Task? Root(string client, ReadOnlySpan<HeapPointer> pointers)
    {
        if (pointers.IsEmpty)
        {
            return null;
        }

        ClientRoots roots = gc.Roots;
        int slot = gc.Node.Slot;
        ushort generation = gc.Node.Generation;
        Dictionary<int, List<HeapPointer>>? remote = null;
        foreach (HeapPointer p in pointers)
        {
            if (p.Slot == slot && p.Generation == generation)
            {
                roots.Add(client, p.Value);
            }
            else if (p.Address != (ulong)gc.Node.Heap.ZeroBase)
            {
                remote ??= [];
                CollectionsMarshal.GetValueRefOrAddDefault(remote, p.Slot, out _) ??= [];
                remote[p.Slot].Add(p);
            }
        }

        gc.AfterMalloc();
        return remote is null ? null : RootRemoteAsync(client, remote);
    }

    private async Task RootRemoteAsync(string client, Dictionary<int, List<HeapPointer>> bySlot)
    {
        NodeInfo[] nodes = await grains.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap).GetNodesAsync();
        foreach ((int slot, List<HeapPointer> pointers) in bySlot)
        {
            if (nodes.FirstOrDefault(n => n.Slot == slot) is { } owner)
            {
                await grains.GetGrain<IGcNodeGrain>(owner.Name).AddRootsAsync(client, [.. pointers]);
            }
        }
    }
}
