using ClusterHeap.Contracts;
using ClusterHeap.Heap;

namespace ClusterHeap.Grains.Node;

/// <summary>
/// Objects' ends (Contracts/ObjectEnds.cs) on one node: the mcache grain writes them into the objects it has
/// just allocated (a malloc that carries its first contents), and the mcache grain and the heap node grain
/// read them before they free (the checked read that frees). Reads check like every read does: the pointer
/// must be this node's, and the whole object as the caller sized it must lie inside one live object.
/// </summary>
internal static class Ends
{
    /// <summary>Writes <paramref name="ends"/> into the fresh <paramref name="size"/>-byte object at <paramref name="address"/> of this node.</summary>
    public static void WriteFresh(NodeHeap heap, nuint address, long size, ReadOnlySpan<byte> ends)
    {
        (int head, int tail) = ObjectEnds.Parts(size);
        heap.Write(address, ends[..head]);
        if (tail > 0)
        {
            heap.Write(address + (nuint)(size - tail), ends.Slice(ObjectEnds.Half, tail));
        }
    }

    /// <summary>Copies the ends of the <paramref name="size"/>-byte object at <paramref name="pointer"/> into <paramref name="ends"/>, or says why not.</summary>
    public static HeapError? Read(HeapNodeService node, HeapPointer pointer, long size, Span<byte> ends)
    {
        if (HeapErrors.CheckRange(node, pointer, size) is { } error)
        {
            return error;
        }

        (int head, int tail) = ObjectEnds.Parts(size);
        // Validated again by the heap: another caller may free the object between CheckRange and here.
        nuint address = (nuint)pointer.Address;
        PointerError result = node.Heap.TryRead(address, ends[..head]);
        if (result == PointerError.None && tail > 0)
        {
            result = node.Heap.TryRead(address + (nuint)(size - tail), ends.Slice(ObjectEnds.Half, tail));
        }

        if (result == PointerError.None)
        {
            return null;
        }

        ends.Clear();
        return HeapErrors.FromPointerError(result, pointer, size, node.Name);
    }
}
