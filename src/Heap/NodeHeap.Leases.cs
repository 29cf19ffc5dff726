using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// A span lent to a remote mcache (the lender's side describes it; the lessee allocates from it).
/// Bit i of <see cref="FreeSlots"/> set: slot i (address <c>SpanBase + i * ElemSize</c>) is the lessee's to hand out.
/// <see cref="LeaseId"/> is this heap's number for the lease (1, 2, …); the cluster names it by the lender too
/// (Contracts' LeaseKey: lender slot, lender generation, this number).
/// </summary>
public sealed record SpanLease(long LeaseId, int SpanClass, nuint SpanBase, int ElemSize, int Objects, ulong[] FreeSlots, LesseeId Lessee);

/// <summary>Who holds a lease, as the cluster tier names a node: its name and the generation it registered with.</summary>
public readonly record struct LesseeId(string Node, ushort Generation);

/// <summary>One lease this heap has lent and not had back (what <see cref="NodeHeap.LentLeases"/> lists).</summary>
public readonly record struct LentLease(long LeaseId, int SpanClass, LesseeId Lessee);

// Cross-node leases, lender side. See NodeHeap.cs and docs/DESIGN.md §5.
//
// A lease is a span cached by a remote mcache. At lend time every free slot is marked allocated (bitmap,
// alloc bits, zeroed if needed) and counted as a malloc here, so a free, read or write of an object the lessee
// handed out is valid on this node at once, with no call from the lessee per object. The lessee returns the
// lease when it has handed out every slot (or gives back the ones it did not hand out); those are freed here.
// If the lessee's node dies its lease is reclaimed: the span is uncached and every slot stays allocated,
// since this node cannot know which ones were handed out (at most one span's unissued slots leak).
//
// This table is the cluster's one record of a lease on the lender's side: the heap node grain reads it (to report
// and to reclaim) and keeps no copy; the lessee's mcache grain holds the other side (Grains' LeaseBook, held leases).
public sealed unsafe partial class NodeHeap
{
    private readonly Lock _leaseLock = new();
    private readonly Dictionary<long, Lent> _leases = [];   // lease id → what was lent to whom; guarded by _leaseLock
    private long _nextLeaseId;
    private long _leasesLent, _leasesReturned, _leasesReclaimed;   // guarded by _leaseLock
    private readonly long[] _lentSlots = new long[SizeClasses.NumClasses];   // guarded by _leaseLock

    private readonly record struct Lent(nint Span, ulong[] Slots, LesseeId Lessee);

    /// <summary>Lends a span of <paramref name="spanClass"/> to <paramref name="lessee"/>; null when this node cannot grow for one.</summary>
    public SpanLease? LendSpan(int spanClass, LesseeId lessee)
    {
        if (spanClass < 2 || spanClass >= SizeClasses.NumSpanClasses)
            throw new ArgumentOutOfRangeException(nameof(spanClass), spanClass, "span class must be a small span class (2..135)");
        MSpan* s = _centrals[spanClass].CacheSpan(SpanCache.Lease, out _);
        if (s == null) return null;
        long id = Interlocked.Increment(ref _nextLeaseId);
        s->LeaseId = id;
        ulong[] free = new ulong[MSpan.BitWords];
        int taken = 0;
        for (int i = 0; i < s->NElems; i++)
        {
            if (s->IsAllocated(i)) continue;
            nuint v = s->StartAddr + (nuint)i * (nuint)s->ElemSize;
            s->AllocBits[i >> 6] |= 1UL << i;
            _bitmap.MarkAllocated(v, (nuint)s->ElemSize, s->Noscan, default);
            if (s->NeedZero != 0) NativeMemory.Clear((void*)v, (nuint)s->ElemSize);
            free[i >> 6] |= 1UL << i;
            taken++;
        }
        s->AllocCount += taken;
        s->FreeIndex = s->NElems;
        s->AllocCache = 0;
        using (_leaseLock.EnterScope())
        {
            _leases[id] = new Lent((nint)s, (ulong[])free.Clone(), lessee);
            _leasesLent++;
            _lentSlots[s->SizeClass] += taken;
        }
        return new SpanLease(id, spanClass, s->StartAddr, s->ElemSize, s->NElems, free, lessee);
    }

    /// <summary>The lessee is done: slots it never handed out (bits of <paramref name="unusedSlots"/>) are freed.</summary>
    /// <exception cref="ArgumentException">The lease is not out (see <see cref="TryReturnLease"/>).</exception>
    public void ReturnLease(long leaseId, ReadOnlySpan<ulong> unusedSlots)
    {
        if (!TryReturnLease(leaseId, unusedSlots)) ThrowNotLent(leaseId);
    }

    /// <summary>
    /// As <see cref="ReturnLease"/>; false (and nothing changes) when the lease is not out: returned or reclaimed
    /// already (a return repeated after the central heap moved), or never lent here.
    /// </summary>
    public bool TryReturnLease(long leaseId, ReadOnlySpan<ulong> unusedSlots)
    {
        if (!TryTakeLease(leaseId, returned: true, out Lent lease)) return false;
        var s = (MSpan*)lease.Span;
        MCentral central = _centrals[s->SpanClass];
        using (central.Enter())
        {
            for (int w = 0; w < unusedSlots.Length && w < MSpan.BitWords; w++)
            {
                ulong bits = unusedSlots[w] & lease.Slots[w];     // only slots this lease was given
                while (bits != 0)
                {
                    int i = (w << 6) + System.Numerics.BitOperations.TrailingZeroCount(bits);
                    bits &= bits - 1;
                    if (i >= s->NElems || !s->IsAllocated(i) || s->IsFreedWhileCached(i)) continue;
                    nuint v = s->StartAddr + (nuint)i * (nuint)s->ElemSize;
                    if (!_bitmap.TryClaimObject(v)) continue; // a stray free of the unissued slot got there first and frees it
                    FreeClaimedLocked(central, s, i, v);
                }
            }
        }
        central.UncacheSpan(s);
        return true;
    }

    /// <summary>The lessee died: the span is uncached; its slots stay allocated (see the file comment).</summary>
    /// <exception cref="ArgumentException">The lease is not out (see <see cref="TryReclaimLease"/>).</exception>
    public void ReclaimLease(long leaseId)
    {
        if (!TryReclaimLease(leaseId)) ThrowNotLent(leaseId);
    }

    /// <summary>As <see cref="ReclaimLease"/>; false (and nothing changes) when the lease is not out.</summary>
    public bool TryReclaimLease(long leaseId)
    {
        if (!TryTakeLease(leaseId, returned: false, out Lent lease)) return false;
        var s = (MSpan*)lease.Span;
        _centrals[s->SpanClass].UncacheSpan(s);
        return true;
    }

    /// <summary>The leases this heap has lent and not had back, and to whom.</summary>
    public IReadOnlyList<LentLease> LentLeases
    {
        get
        {
            using (_leaseLock.EnterScope()) return [.. _leases.Select(l => new LentLease(l.Key, ((MSpan*)l.Value.Span)->SpanClass, l.Value.Lessee))];
        }
    }

    /// <summary>Ids of the leases this node has lent and not had back.</summary>
    public IReadOnlyList<long> ActiveLeases
    {
        get
        {
            using (_leaseLock.EnterScope()) return [.. _leases.Keys];
        }
    }

    private bool TryTakeLease(long leaseId, bool returned, out Lent lease)
    {
        using (_leaseLock.EnterScope())
        {
            if (!_leases.Remove(leaseId, out lease)) return false;
            if (returned) _leasesReturned++;
            else _leasesReclaimed++;
            return true;
        }
    }

    [DoesNotReturn]
    private static void ThrowNotLent(long leaseId) =>
        throw new ArgumentException($"lease {leaseId} is not active on this node (returned already, or never lent here)", nameof(leaseId));
}
