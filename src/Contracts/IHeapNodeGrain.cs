namespace ClusterHeap.Contracts;

/// <summary>
/// A silo's arena seen from outside, keyed by the node (silo) name and pinned to it. Free, read and
/// write go straight to the owner: a pointer whose slot or generation is not this node's is
/// "node gone"; one that is not inside a live object is "invalid pointer" or "out of bounds".
/// Single calls throw a <see cref="ClusterHeapException"/>; batch calls return one error per item.
/// The methods under "cluster tier" are for the central heap grain.
/// </summary>
[Alias("ClusterHeap.IHeapNodeGrain")]
public interface IHeapNodeGrain : IGrainWithStringKey
{
    /// <summary>A call that does nothing (benchmarks measure the grain call with it).</summary>
    [Alias("Ping")]
    Task PingAsync();

    /// <summary>This node's name, slot, generation, silo and grant.</summary>
    [Alias("GetInfo")]
    Task<NodeInfo> GetInfoAsync();

    /// <summary>Frees the object that starts at <paramref name="pointer"/>.</summary>
    [Alias("Free")]
    Task FreeAsync(HeapPointer pointer);

    /// <summary>Frees each pointer; item i of the reply is null when pointer i was freed.</summary>
    [Alias("FreeBatch")]
    Task<HeapError?[]> FreeBatchAsync(PointerBatch pointers);

    /// <summary>Reads <paramref name="length"/> bytes at <paramref name="pointer"/> (may be interior; must stay in one object).</summary>
    [Alias("Read")]
    Task<byte[]> ReadAsync(HeapPointer pointer, int length);

    /// <summary>One read per request.</summary>
    [Alias("ReadBatch")]
    Task<ReadResult[]> ReadBatchAsync([Immutable] ReadRequest[] requests);

    /// <summary>Writes <paramref name="data"/> at <paramref name="pointer"/> (may be interior; must stay in one object).</summary>
    [Alias("Write")]
    Task WriteAsync(HeapPointer pointer, [Immutable] byte[] data);

    /// <summary>One write per request; item i of the reply is null when write i happened.</summary>
    [Alias("WriteBatch")]
    Task<HeapError?[]> WriteBatchAsync([Immutable] WriteRequest[] requests);

    /// <summary>
    /// Reads each object's ends (ObjectEnds.cs) and frees it, in one call: the checked read that frees. An
    /// object whose read is refused is not freed.
    /// </summary>
    [Alias("ReadEndsAndFree")]
    Task<EndsFreeResult> ReadEndsAndFreeAsync(EndsFreeRequest request);

    /// <summary>MemStats plus the cluster tier's counters.</summary>
    [Alias("GetStats")]
    Task<NodeStats> GetStatsAsync();

    /// <summary>Every span, or those of one size class (0 = large) when <paramref name="sizeClass"/> ≥ 0.</summary>
    [Alias("GetSpans")]
    Task<SpanRow[]> GetSpansAsync(int sizeClass = -1);

    /// <summary>The arena's spans reduced to the client's map picture.</summary>
    [Alias("GetHeapMap")]
    Task<HeapMap> GetHeapMapAsync();

    /// <summary>Runs the heap verifier (docs/DESIGN.md §6) on this node.</summary>
    [Alias("Verify")]
    Task<VerifyResult> VerifyAsync();

    /// <summary>Returns free runs to the OS (all of them when <paramref name="force"/>); bytes released.</summary>
    [Alias("Scavenge")]
    Task<long> ScavengeAsync(bool force = false);

    // ---- cluster tier (called by the central heap grain) ----

    /// <summary>Slot, generation, grant and leases, for the central heap's rebuild.</summary>
    [Alias("GetState")]
    Task<NodeState> GetStateAsync();

    /// <summary>
    /// Lender side: lend one span of <paramref name="spanClass"/> to node <paramref name="lesseeNode"/> of generation
    /// <paramref name="lesseeGeneration"/>; null when this node cannot grow.
    /// </summary>
    [Alias("LendSpan")]
    Task<SpanLeaseInfo?> LendSpanAsync(int spanClass, string lesseeNode, ushort lesseeGeneration);

    /// <summary>Lender side: the lessee is done; its unissued slots are freed. A lease not out here (returned already, or another node's) is ignored.</summary>
    [Alias("ReturnLease")]
    Task ReturnLeaseAsync(LeaseKey lease, [Immutable] ulong[] unusedSlots);

    /// <summary>Lender side: the lessee dropped it unreturned; the span is uncached and its slots stay allocated. A lease not out here is ignored.</summary>
    [Alias("ReclaimLease")]
    Task ReclaimLeaseAsync(LeaseKey lease);

    /// <summary>Lessee side: the lender died; drop these leases without handing out more of them.</summary>
    [Alias("RevokeLeases")]
    Task RevokeLeasesAsync([Immutable] LeaseKey[] leases);

    /// <summary>
    /// Node <paramref name="name"/> (slot <paramref name="slot"/>, generation <paramref name="generation"/>) died: reclaim
    /// what this node lent to it and revoke what this node's mcaches hold from it (idempotent).
    /// </summary>
    [Alias("ForgetNode")]
    Task ForgetNodeAsync(string name, int slot, ushort generation);

    /// <summary>Sets the node's growth limit to <paramref name="growthLimit"/> (a grant).</summary>
    [Alias("ApplyGrant")]
    Task ApplyGrantAsync(long growthLimit);

    /// <summary>Keeps a copy of the central heap's durable facts (last generation, memory limit) for its next rebuild.</summary>
    [Alias("NoteCentral")]
    Task NoteCentralAsync(CentralNote note);

    /// <summary>Allocates a large object (&gt; 32 KiB) here on behalf of a node that cannot; null when this node cannot either.</summary>
    [Alias("MallocLarge")]
    Task<HeapPointer?> MallocLargeAsync(long size, ObjectKind kind);
}
