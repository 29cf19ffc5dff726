namespace ClusterHeap.Contracts;

/// <summary>
/// What an object holds, which picks its span class (<c>sizeclass &lt;&lt; 1 | noscan</c>). Go's words: an object is
/// noscan or holds pointers; the heap bitmap's per-word kinds (WordKind: dead, scalar, pointer) are a different thing.
/// </summary>
[GenerateSerializer, Alias("ClusterHeap.ObjectKind")]
public enum ObjectKind
{
    /// <summary>No pointers (noscan); small ones under 16 B use the tiny allocator.</summary>
    Noscan = 0,
    /// <summary>May hold pointers (scan).</summary>
    Pointer = 1,
}
