using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

// The cookie-checked heap operations every workload is built from: allocate and stamp, check and free.
public sealed partial class StressContext
{
    /// <summary>
    /// Allocates one object per size through <paramref name="worker"/>'s mcache (moving to another node
    /// when its node dies); the call carries each object's cookie as its ends, so the objects come back
    /// stamped. Returns them and whether the cluster answered out of memory (then fewer objects came back).
    /// </summary>
    public async Task<(List<Obj> Objects, bool OutOfMemory)> MallocAsync(int worker, int shift, long[] sizes, ObjectKind kind, bool oomExpected = false)
    {
        var result = new List<Obj>(sizes.Length);
        int from = 0;
        var deadline = Stopwatch.StartNew();
        while (from < sizes.Length)
        {
            (string node, IMCacheGrain mcache) = MCacheFor(worker, shift);
            int count = sizes.Length - from;
            ulong firstSeq = NextSeqs(count);
            byte[] ends = new byte[count * ObjectEnds.Size];
            for (int i = 0; i < count; i++) Cookie.Ends(new Obj(default, (int)sizes[from + i], firstSeq + (ulong)i), ends.AsSpan(i * ObjectEnds.Size));
            MallocBatchResult reply;
            try
            {
                Task death = NextDeath;
                reply = await BoundedAsync(mcache.MallocStampedAsync(new StampedMallocRequest(sizes.AsSpan(from), ends, kind)), death);
            }
            catch (Exception e) when (IsTransient(e))
            {
                if (await IsGoneAsync(node) || await RetryAsync(deadline, $"malloc on {node}", e)) continue;
                break;
            }
            HeapPointer[] pointers = reply.Pointers;
            CountMallocs(pointers.Length);
            for (int i = 0; i < pointers.Length; i++) result.Add(new Obj(pointers[i], (int)sizes[from + i], firstSeq + (ulong)i));
            from += pointers.Length;
            if (reply.Error is null) break;
            if (reply.Error.Kind == HeapErrorKind.OutOfMemory)
            {
                Interlocked.Increment(ref _ooms);
                if (!oomExpected) Error($"malloc on {node}: {reply.Error.Message}");
                else if (!reply.Error.Message.Contains("out of memory", StringComparison.Ordinal)) Error($"out of memory without a clear message: {reply.Error.Message}");
                return (result, true);
            }
            if (reply.Error.Kind == HeapErrorKind.NodeGone && await IsGoneAsync(node)) continue;
            if (reply.Error.Kind == HeapErrorKind.Unavailable && await RetryAsync(deadline, $"malloc on {node}", reply.Error.Message)) continue;
            if (reply.Error.Kind == HeapErrorKind.Unavailable) break; // RetryAsync reported it
            Error($"malloc on {node}: {reply.Error.Message}");
            break;
        }
        return (result, false);
    }

    /// <summary>
    /// Checks every object's cookie and frees it: one call per owner (the read that frees, which reads the
    /// object's ends and frees it only when the read succeeded), made to the owner's mcache grain of the P
    /// <paramref name="worker"/> allocates through, so the freed slots go onto that P's free stacks and its
    /// next mallocs reuse them without a lock (the owner's free path). The call is not retried after a transport
    /// failure, since the frees may have happened before the reply was lost and the addresses may already
    /// hold another worker's objects. Such objects are counted as interrupted (their fate is unknown) unless
    /// their node turns out to be gone.
    /// </summary>
    public async Task FreeAsync(IReadOnlyList<Obj> objects, int worker = 0)
    {
        if (objects.Count == 0) return;
        await ForEachOwnerAsync(objects, idempotent: false, async (node, group) =>
        {
            IMCacheGrain owner = MCacheOf(node.GetPrimaryKeyString(), ProcOf(worker));
            var pointers = new HeapPointer[group.Count];
            long[] sizes = new long[group.Count];
            for (int i = 0; i < group.Count; i++) (pointers[i], sizes[i]) = (group[i].Pointer, group[i].Size);
            Task death = NextDeath;
            EndsFreeResult reply = await BoundedAsync(owner.ReadEndsAndFreeAsync(new EndsFreeRequest(pointers, sizes)), death);
            long freed = 0;
            for (int i = 0; i < group.Count; i++)
            {
                Obj o = group[i];
                if (reply.ErrorOf(i) is { } error)
                {
                    if (error.Kind == HeapErrorKind.NodeGone) LoseObjects(1);
                    else Error($"cookie read and free: {error.Message}");
                    continue;
                }
                freed++;
                Interlocked.Increment(ref _cookieChecks);
                if (!Cookie.Matches(o, reply.EndsOf(i)))
                {
                    Interlocked.Increment(ref _cookieFailures);
                    if (_errorSamples.Count < MaxErrorSamples) _errorSamples.Enqueue($"cookie failure: object {o.Pointer} ({o.Size} B, seq {o.Seq})");
                }
            }
            CountFrees(freed);
        });
    }
}
