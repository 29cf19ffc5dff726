using System.Collections.Concurrent;
using System.Reflection;
using ClusterHeap.Contracts;
using ClusterHeap.Grains.Node;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The collector's hooks on the data path (docs/DESIGN.md §12), as one incoming call filter so the grains stay as they
/// are. For a call a client made to change the object graph (malloc, free, write, root, release, link) it passes the
/// node's <see cref="GcGate"/> (so a stopped world runs none); after a malloc it roots the returned pointers for the
/// calling client — the call's source, the client connection's grain id — on their owner node (this one's under one
/// lock acquisition, another node's by one call to it, found through the node's slot table) and takes the pacer's
/// shouldhelpgc point; after a free it drops the freed objects' roots. Calls one grain makes to another as part of a
/// client's call (a remote stamp, a lease, a large allocation elsewhere) pass ungated: their client call holds the gate
/// already, and gating them would deadlock two nodes stopping at once. The central heap's lease calls learn their
/// client here too (<see cref="GcCaller"/>).
/// <para>
/// Cost: which hook a call takes is looked up once per request type (<c>Hooks</c>); a call with no hook pays that lookup
/// and nothing else.
/// </para>
/// </summary>
internal sealed class GcGateFilter(GcNode gc, IGrainFactory grains) : IIncomingGrainCallFilter
{
    private enum Hook : byte { None, Gate, Malloc, MallocBatch, Free, FreeBatch, EndsFree, OnBehalf, Caller }

    private static readonly ConcurrentDictionary<Type, Hook> Hooks = new();   // request type → hook, filled on first sight

    private readonly HeapRouter _owners = new(grains);   // slot → owner node, fetched once and on a slot it does not know

    /// <inheritdoc/>
    public Task Invoke(IIncomingGrainCallContext context)
    {
        Type type = context.Request.GetType();
        if (!Hooks.TryGetValue(type, out Hook hook))
        {
            hook = Hooks.GetOrAdd(type, HookOf(context.InterfaceMethod));
        }

        return hook == Hook.None ? context.Invoke() : InvokeHookedAsync(context, hook);
    }

    private async Task InvokeHookedAsync(IIncomingGrainCallContext context, Hook hook)
    {
        GrainId? source = context.SourceId;
        GrainId client = source is { } s && s.IsClient() ? s : default;
        switch (hook)
        {
            case Hook.Caller:
                GcCaller.Client = client.IsDefault ? null : client;   // restored when this method returns
                await context.Invoke();
                return;
            case Hook.OnBehalf:
                await gc.WhenNoStopTheWorldSession;
                await context.Invoke();
                return;
        }

        ClientRoots roots = gc.Roots;
        long stamp = roots.Stamp;   // a free drops only roots older than itself
        if (client.IsDefault)
        {
            await context.Invoke();
            Freed(context, hook, roots, stamp);   // frees only: roots are taken for clients
            return;
        }

        await gc.Gate.EnterAsync();
        bool malloc = hook is Hook.Malloc or Hook.MallocBatch;
        if (malloc)
        {
            GcGate.InsideGatedCall = true;   // a malloc at the limit steps out of the gate to wait for a cycle (GcNode)
        }

        try
        {
            await context.Invoke();
            if (malloc)
            {
                Task? remote = Root(client, context, hook, roots);
                if (remote is not null)
                {
                    await remote;
                }
            }
            else
            {
                Freed(context, hook, roots, stamp);
            }
        }
        finally
        {
            gc.Gate.Exit();
        }
    }

    /// <summary>The hook of an interface method (once per request type).</summary>
    private static Hook HookOf(MethodInfo? method)
    {
#if CLUSTERHEAP_BENCH_NO_GC_HOOKS
        // The benchmark's build without the collector's data-path hooks (scripts/bench-gc-hooks.sh); never shipped.
        if (method?.DeclaringType != typeof(ICentralGcGrain)) return Hook.None;
#endif
        Type? grain = method?.DeclaringType;
        string? name = method?.Name;
        if (grain == typeof(IMCacheGrain))
        {
            return name switch
            {
                nameof(IMCacheGrain.MallocAsync) => Hook.Malloc,
                nameof(IMCacheGrain.MallocBatchAsync) or nameof(IMCacheGrain.MallocSizesAsync) or nameof(IMCacheGrain.MallocStampedAsync) => Hook.MallocBatch,
                nameof(IMCacheGrain.ReadEndsAndFreeAsync) => Hook.EndsFree,
                _ => Hook.None,
            };
        }

        if (grain == typeof(IHeapNodeGrain))
        {
            return name switch
            {
                nameof(IHeapNodeGrain.FreeAsync) => Hook.Free,
                nameof(IHeapNodeGrain.FreeBatchAsync) => Hook.FreeBatch,
                nameof(IHeapNodeGrain.ReadEndsAndFreeAsync) => Hook.EndsFree,
                nameof(IHeapNodeGrain.WriteAsync) or nameof(IHeapNodeGrain.WriteBatchAsync) => Hook.Gate,
                nameof(IHeapNodeGrain.MallocLargeAsync) or nameof(IHeapNodeGrain.LendSpanAsync) => Hook.OnBehalf,
                _ => Hook.None,
            };
        }

        if (grain == typeof(IGcNodeGrain))
        {
            return name is nameof(IGcNodeGrain.AddRootsAsync) or nameof(IGcNodeGrain.ReleaseRootsAsync) or nameof(IGcNodeGrain.LinkAsync)
                ? Hook.Gate : Hook.None;
        }

        if (grain == typeof(ICentralGcGrain))
        {
            return name is nameof(ICentralGcGrain.RenewClientAsync) or nameof(ICentralGcGrain.EndClientAsync) ? Hook.Caller : Hook.None;
        }

        return Hook.None;
    }

    /// <summary>Drops the roots of what a free freed (each pointer whose free did not fail).</summary>
    private static void Freed(IIncomingGrainCallContext context, Hook hook, ClientRoots roots, long stamp)
    {
        switch (hook)
        {
            case Hook.Free when context.Request.GetArgument(0) is HeapPointer p:
                roots.Freed(p.Value, stamp);
                break;
            case Hook.FreeBatch when context.Request.GetArgument(0) is PointerBatch b && context.Result is HeapError?[] errors:
                roots.Freed(b.Pointers, errors, stamp);
                break;
            case Hook.EndsFree when context.Request.GetArgument(0) is EndsFreeRequest q && context.Result is EndsFreeResult e:
                roots.Freed(q.Pointers, e.Errors, stamp);
                break;
        }
    }

    /// <summary>Roots a malloc's pointers: this node's here, at once; other nodes' at their owners (the task returned).</summary>
    private Task? Root(GrainId client, IIncomingGrainCallContext context, Hook hook, ClientRoots roots)
    {
        HeapPointer[]? batch = null;
        HeapPointer one = default;
        switch (hook)
        {
            case Hook.Malloc when context.Result is HeapPointer p:
                one = p;
                break;
            case Hook.MallocBatch when context.Result is MallocBatchResult r:
                batch = r.Pointers;
                break;
            default:
                return null;
        }

        ReadOnlySpan<HeapPointer> pointers = batch ?? new ReadOnlySpan<HeapPointer>(in one);
        HeapNodeService node = gc.Node;
        List<HeapPointer>? elsewhere = roots.AddBatch(client, pointers, node.Slot, node.Generation, node.Heap.ZeroBase);
        gc.AfterMalloc();
        return elsewhere is null ? null : RootRemoteAsync(client, elsewhere);
    }

    /// <summary>Roots pointers of other nodes (a leased span's, a large object allocated elsewhere) at their owners.</summary>
    private async Task RootRemoteAsync(GrainId client, List<HeapPointer> pointers)
    {
        foreach (IGrouping<int, HeapPointer> group in pointers.GroupBy(p => p.Slot))
        {
            // The owner as this node's slot table knows it (refreshed from the central heap only for a slot or generation
            // it does not know); none: the node is gone, and so is the object.
            if (await _owners.OwnerAsync(group.First()) is { } owner)
            {
                await grains.GetGrain<IGcNodeGrain>(owner.Name).AddRootsAsync(client, [.. group]);
            }
        }
    }
}
