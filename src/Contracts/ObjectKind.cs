namespace ClusterHeap.Contracts;

/// <summary>What an object holds, which picks its span class (<c>sizeclass &lt;&lt; 1 | noscan</c>).</summary>
[GenerateSerializer, Alias("ClusterHeap.ObjectKind")]
public enum ObjectKind
{
    /// <summary>No pointers (noscan); small ones under 16 B use the tiny allocator.</summary>
    Scalar = 0,
    /// <summary>May hold pointers (scan).</summary>
    Pointer = 1,
}
