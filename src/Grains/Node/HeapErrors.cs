using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Grains.Node;

/// <summary>Turns the node heap's pointer refusals (PointerError) and foreign pointers into the contracts' HeapError.</summary>
internal static class HeapErrors
{
    /// <summary>A PointerError from Free/Read/Write/CheckRange, as the client sees it.</summary>
    public static HeapError FromPointerError(PointerError error, HeapPointer pointer, long length, string node)
    {
        string detail = PointerErrors.Describe(error, pointer.Address);
        return error == PointerError.OutOfBounds
            ? HeapError.OutOfBounds(pointer, length, $"{detail} (node {node})")
            : new HeapError(HeapErrorKind.InvalidPointer, $"invalid pointer {pointer} on node {node}: {detail}",
                pointer, error.ToString(), length, 0);
    }

    /// <summary>The pointer names a slot or generation that is not this node's.</summary>
    public static HeapError? CheckOwner(HeapPointer pointer, int slot, ushort generation, string node)
    {
        if (pointer.Slot != slot)
        {
            return HeapError.NodeGone(pointer, HeapError.UnknownSlot,
                $"node {node} owns slot {slot}, the pointer names slot {pointer.Slot}");
        }

        return pointer.Generation != generation
            ? HeapError.NodeGone(pointer, HeapError.StaleGeneration,
                $"slot {slot} is node {node} generation {generation}, the pointer has generation {pointer.Generation}")
            : null;
    }

    /// <summary>Owner check, then the heap's range check: [pointer, pointer+length) inside one live object of this node.</summary>
    public static HeapError? CheckRange(HeapNodeService node, HeapPointer pointer, long length)
    {
        if (CheckOwner(pointer, node.Slot, node.Generation, node.Name) is { } gone)
        {
            return gone;
        }

        if (length == 0 && (nuint)pointer.Address == node.Heap.ZeroBase)
        {
            return null;
        }

        PointerError result = node.Heap.CheckRange((nuint)pointer.Address, length, out HeapObject obj);
        if (result == PointerError.None)
        {
            return null;
        }

        HeapError error = FromPointerError(result, pointer, length, node.Name);
        return result == PointerError.OutOfBounds
            ? error with { Limit = obj.Size, Message = $"{error.Message}; the object at 0x{obj.Base:x} has {obj.Size} bytes" }
            : error;
    }
}
