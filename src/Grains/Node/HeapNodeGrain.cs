using ClusterHeap.Contracts;
using ClusterHeap.Grains.Placement;
using ClusterHeap.Heap;
using Microsoft.Extensions.Logging;
using Orleans.Placement;

namespace ClusterHeap.Grains.Node;

/// <summary>
/// A silo's arena seen from outside (docs/DESIGN.md §5), keyed by the node name and pinned to it. Every
/// pointer is checked in three steps before the heap is touched: its slot and generation must be
/// this node's (else "node gone"), then the heap checks that it is a live object start (free) or that
/// the range lies inside one live object (read, write). A refused request changes nothing.
/// Statistics, spans, heap map and verifier are in HeapNodeGrain.Inspect.cs; the lender's side of
/// leases and the central heap's calls in HeapNodeGrain.ClusterTier.cs.
/// </summary>
[NodePlacement, Immovable, KeepAlive]
public sealed partial class HeapNodeGrain : Grain, IHeapNodeGrain
{
    private readonly HeapNodeService _node;
    private readonly ILogger<HeapNodeGrain> _logger;

    /// <summary>Created by Orleans on the silo the key names.</summary>
    public HeapNodeGrain(HeapNodeService node, ILogger<HeapNodeGrain> logger)
    {
        _node = node;
        _logger = logger;
    }

    private NodeHeap Heap => _node.Heap;

    /// <inheritdoc/>
    public override Task OnActivateAsync(CancellationToken cancellationToken)
    {
        string key = this.GetPrimaryKeyString();
        // Guards against a stale placement cache activating us on the wrong silo (docs/DESIGN.md §9).
        return key != _node.Name
            ? Task.FromException(HeapError.InvalidArgument($"heap node grain {key} activated on silo {_node.Name}").ToException())
            : Task.CompletedTask;
    }

    /// <inheritdoc/>
    public override Task OnDeactivateAsync(DeactivationReason reason, CancellationToken cancellationToken)
    {
        ReleaseLargeCache();
        return Task.CompletedTask;
    }

    /// <inheritdoc/>
    public Task PingAsync() => Task.CompletedTask;

    /// <inheritdoc/>
    public Task<NodeInfo> GetInfoAsync() =>
        Task.FromResult(new NodeInfo(_node.Name, _node.Slot, _node.Generation, _node.Silo, _node.Granted, _node.Options.ProcessorsPerNode, _node.Options.ArenaSize));

    /// <inheritdoc/>
    public Task FreeAsync(HeapPointer pointer) =>
        Free(pointer) is { } error ? Task.FromException(error.ToException()) : Task.CompletedTask;

    /// <inheritdoc/>
    public Task<HeapError?[]> FreeBatchAsync(PointerBatch batch)
    {
        HeapPointer[] pointers = batch.Pointers;
        var errors = new HeapError?[pointers.Length];
        using (Heap.EnterMutator())
        {
            for (int i = 0; i < pointers.Length; i++)
            {
                errors[i] = FreeLocked(pointers[i]);
            }
        }

        return Task.FromResult(errors);
    }

    /// <inheritdoc/>
    public Task<byte[]> ReadAsync(HeapPointer pointer, int length) =>
        Read(pointer, length, out byte[]? data) is { } error ? Task.FromException<byte[]>(error.ToException()) : Task.FromResult(data);

    /// <inheritdoc/>
    public Task<ReadResult[]> ReadBatchAsync(ReadRequest[] requests)
    {
        var results = new ReadResult[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            HeapError? error = Read(requests[i].Pointer, requests[i].Length, out byte[]? data);
            results[i] = new ReadResult(data, error);
        }

        return Task.FromResult(results);
    }

    /// <inheritdoc/>
    public Task WriteAsync(HeapPointer pointer, byte[] data) =>
        Write(pointer, data) is { } error ? Task.FromException(error.ToException()) : Task.CompletedTask;

    /// <inheritdoc/>
    public Task<HeapError?[]> WriteBatchAsync(WriteRequest[] requests)
    {
        var errors = new HeapError?[requests.Length];
        for (int i = 0; i < requests.Length; i++)
        {
            errors[i] = Write(requests[i].Pointer, requests[i].Data);
        }

        return Task.FromResult(errors);
    }

    /// <inheritdoc/>
    public Task<EndsFreeResult> ReadEndsAndFreeAsync(EndsFreeRequest request)
    {
        ReadOnlySpan<HeapPointer> pointers = request.Pointers;
        ReadOnlySpan<long> sizes = request.Sizes;
        byte[] ends = new byte[pointers.Length * ObjectEnds.Size];
        HeapError?[]? errors = null;
        using (Heap.EnterMutator())
        {
            for (int i = 0; i < pointers.Length; i++)
            {
                HeapError? error = Ends.Read(_node, pointers[i], sizes[i], ends.AsSpan(i * ObjectEnds.Size, ObjectEnds.Size)) ?? FreeLocked(pointers[i]);
                if (error is not null)
                {
                    (errors ??= new HeapError?[pointers.Length])[i] = error;
                }
            }
        }

        return Task.FromResult(new EndsFreeResult(ends, errors));
    }

    private HeapError? Free(HeapPointer pointer)
    {
        using (Heap.EnterMutator())
        {
            return FreeLocked(pointer);
        }
    }

    private HeapError? FreeLocked(HeapPointer pointer)
    {
        if (HeapErrors.CheckOwner(pointer, _node.Slot, _node.Generation, _node.Name) is { } gone)
        {
            return gone;
        }

        nuint address = (nuint)pointer.Address;
        if (address == Heap.ZeroBase)
        {
            return null; // Free(zerobase) is a no-op, as in the heap
        }

        PointerError result = Heap.TryFree(address);
        return result == PointerError.None ? null : HeapErrors.FromPointerError(result, pointer, 0, _node.Name);
    }

    private HeapError? Read(HeapPointer pointer, int length, out byte[] data)
    {
        data = [];
        if (CheckRange(pointer, length) is { } error)
        {
            return error;
        }

        byte[] buffer = new byte[length];
        PointerError result = Heap.TryRead((nuint)pointer.Address, buffer); // validates again: the object may have been freed since CheckRange
        if (result != PointerError.None)
        {
            return HeapErrors.FromPointerError(result, pointer, length, _node.Name);
        }

        data = buffer;
        return null;
    }

    private HeapError? Write(HeapPointer pointer, byte[] data)
    {
        if (CheckRange(pointer, data.Length) is { } error)
        {
            return error;
        }

        PointerError result = Heap.TryWrite((nuint)pointer.Address, data); // validates again: the object may have been freed since CheckRange
        return result == PointerError.None ? null : HeapErrors.FromPointerError(result, pointer, data.Length, _node.Name);
    }

    /// <summary>Owner check, then the heap's range check: [pointer, pointer+length) inside one live object.</summary>
    private HeapError? CheckRange(HeapPointer pointer, long length) => HeapErrors.CheckRange(_node, pointer, length);
}
