namespace ClusterHeap.Contracts;

// Typed errors for single calls. Each wraps the HeapError that batch replies carry per item, so a
// client handles both the same way: catch ClusterHeapException (or a subclass) and read .Error.
// They are [GenerateSerializer] so Orleans ships them to the caller intact, message included.

/// <summary>Base of every ClusterHeap error; <see cref="Error"/> has the kind, pointer and figures.</summary>
[GenerateSerializer, Alias("ClusterHeap.ClusterHeapException")]
public class ClusterHeapException : Exception
{
    /// <summary>For the serializer.</summary>
    public ClusterHeapException() : base("ClusterHeap error") => Error = HeapError.InvalidArgument("ClusterHeap error");

    /// <summary>Wraps <paramref name="error"/>; the message is the error's.</summary>
    public ClusterHeapException(HeapError error) : base(error.Message) => Error = error;

    /// <summary>What went wrong.</summary>
    [Id(0)]
    public HeapError Error { get; private set; }

    /// <inheritdoc/>
    public override string Message => Error.Message;
}

/// <summary>No node could supply the memory; the message names the limit and the figures.</summary>
[GenerateSerializer, Alias("ClusterHeap.ClusterOutOfMemoryException")]
public sealed class ClusterOutOfMemoryException : ClusterHeapException
{
    /// <summary>For the serializer.</summary>
    public ClusterOutOfMemoryException() { }

    /// <summary>Wraps an out-of-memory error.</summary>
    public ClusterOutOfMemoryException(HeapError error) : base(error) { }
}

/// <summary>The pointer is not a live object start; <c>Error.Reason</c> is the heap's PointerError.</summary>
[GenerateSerializer, Alias("ClusterHeap.InvalidHeapPointerException")]
public sealed class InvalidHeapPointerException : ClusterHeapException
{
    /// <summary>For the serializer.</summary>
    public InvalidHeapPointerException() { }

    /// <summary>Wraps an invalid-pointer error.</summary>
    public InvalidHeapPointerException(HeapError error) : base(error) { }
}

/// <summary>The pointer's owner is not live: stale generation, unknown slot or dead node.</summary>
[GenerateSerializer, Alias("ClusterHeap.NodeGoneException")]
public sealed class NodeGoneException : ClusterHeapException
{
    /// <summary>For the serializer.</summary>
    public NodeGoneException() { }

    /// <summary>Wraps a node-gone error.</summary>
    public NodeGoneException(HeapError error) : base(error) { }
}

/// <summary>A read or write reaches past the object it starts in.</summary>
[GenerateSerializer, Alias("ClusterHeap.HeapOutOfBoundsException")]
public sealed class HeapOutOfBoundsException : ClusterHeapException
{
    /// <summary>For the serializer.</summary>
    public HeapOutOfBoundsException() { }

    /// <summary>Wraps an out-of-bounds error.</summary>
    public HeapOutOfBoundsException(HeapError error) : base(error) { }
}
