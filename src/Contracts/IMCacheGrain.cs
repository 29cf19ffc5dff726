namespace ClusterHeap.Contracts;

/// <summary>
/// One P: one node heap mcache, keyed <c>"node/P"</c> (<see cref="GrainKeys.MCache"/>), pinned to the
/// silo named <c>node</c>. The allocation path is mcache → node mcentral → node mheap → growth
/// grant from the central heap → cross-node lease → <see cref="ClusterOutOfMemoryException"/>.
/// </summary>
[Alias("ClusterHeap.IMCacheGrain")]
public interface IMCacheGrain : IGrainWithStringKey
{
    /// <summary>Allocates one zeroed object of <paramref name="size"/> bytes (0 gives the zero-size base).</summary>
    /// <exception cref="ClusterOutOfMemoryException">No node can supply it; the message names the limit.</exception>
    [Alias("Malloc")]
    Task<HeapPointer> MallocAsync(long size, ObjectKind kind = ObjectKind.Noscan);

    /// <summary>Allocates <paramref name="count"/> objects of <paramref name="size"/> bytes in one call.</summary>
    [Alias("MallocBatch")]
    Task<MallocBatchResult> MallocBatchAsync(int count, long size, ObjectKind kind = ObjectKind.Noscan);

    /// <summary>Allocates one object per entry of <paramref name="sizes"/>, in order.</summary>
    [Alias("MallocSizes")]
    Task<MallocBatchResult> MallocSizesAsync([Immutable] long[] sizes, ObjectKind kind = ObjectKind.Noscan);

    /// <summary>
    /// Allocates one object per size, in order, and writes each one's ends (ObjectEnds.cs) before answering:
    /// an allocation that carries its first contents, in one call instead of a malloc and a write.
    /// </summary>
    [Alias("MallocStamped")]
    Task<MallocBatchResult> MallocStampedAsync(StampedMallocRequest request);

    /// <summary>
    /// Reads each object's ends (ObjectEnds.cs) and frees it through this P (the checked read that frees). The
    /// objects must live on this mcache's node; a small one goes onto this P's free stack, so this P's next
    /// allocations of its class reuse it without a lock. An object whose read is refused is not freed.
    /// </summary>
    [Alias("ReadEndsAndFree")]
    Task<EndsFreeResult> ReadEndsAndFreeAsync(EndsFreeRequest request);

    /// <summary>Hands every held lease back to its lender (unissued slots are freed there).</summary>
    [Alias("ReturnLeases")]
    Task ReturnLeasesAsync();

    /// <summary>This P's counters.</summary>
    [Alias("GetInfo")]
    Task<MCacheInfo> GetInfoAsync();

    /// <summary>A call that does nothing (benchmarks measure the grain call with it).</summary>
    [Alias("Ping")]
    Task PingAsync();
}
