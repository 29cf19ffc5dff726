using System.Collections.Concurrent;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Node;

/// <summary>
/// The lessee side of cross-node leases on one node (docs/DESIGN.md §5, "Leases"): the spans its mcache grains
/// hold from other nodes. The lender side is the node heap's own lease table (NodeHeap.LentLeases), which this
/// node reports from directly; nothing here copies it. Revocation (the lender died) flags a held lease so its
/// mcache drops it instead of handing out more addresses from it.
/// </summary>
/// <remarks>Concurrency model: a concurrent dictionary; a <see cref="HeldLease"/>'s bits belong to its one mcache grain.</remarks>
public sealed class LeaseBook
{
    private readonly ConcurrentDictionary<LeaseKey, HeldLease> _held = new();
    private long _takenTotal;
    private long _leasedMallocs;

    /// <summary>Leases held by this node's mcaches.</summary>
    public ICollection<HeldLease> Held => _held.Values;

    /// <summary>Leases taken by this node's mcaches (cumulative).</summary>
    public long TakenTotal => Interlocked.Read(ref _takenTotal);

    /// <summary>Objects handed out from leased spans (cumulative).</summary>
    public long LeasedMallocs => Interlocked.Read(ref _leasedMallocs);

    /// <summary>Lessee side: an mcache took a lease.</summary>
    public void AddHeld(HeldLease lease)
    {
        _held[lease.Info.Key] = lease;
        Interlocked.Increment(ref _takenTotal);
    }

    /// <summary>Lessee side: the mcache is done with it.</summary>
    public void RemoveHeld(LeaseKey key) => _held.TryRemove(key, out _);

    /// <summary>Lessee side: the lender died; the holder must drop the lease.</summary>
    public void Revoke(LeaseKey key)
    {
        if (_held.TryRemove(key, out HeldLease? lease))
        {
            lease.Revoked = true;
        }
    }

    /// <summary>Lessee side: the lender of slot <paramref name="slot"/>, generation <paramref name="generation"/> died; every lease held from it is revoked.</summary>
    public void RevokeFrom(int slot, ushort generation)
    {
        foreach (LeaseKey key in _held.Keys)
        {
            if (key.LenderSlot == slot && key.LenderGeneration == generation)
            {
                Revoke(key);
            }
        }
    }

    /// <summary>Counts objects an mcache handed out from leases.</summary>
    public void CountLeasedMallocs(long count) => Interlocked.Add(ref _leasedMallocs, count);
}

/// <summary>
/// A lease held by one mcache grain: the lender's span and the bits of slots still to hand out
/// (bit i set = slot i is free for this lessee). Only its mcache touches <see cref="FreeSlots"/>.
/// </summary>
public sealed class HeldLease(SpanLeaseInfo info, string holder)
{
    private int _wordIndex;

    /// <summary>The lease as the lender sent it.</summary>
    public SpanLeaseInfo Info { get; } = info;

    /// <summary>The mcache grain key that holds it.</summary>
    public string Holder { get; } = holder;

    /// <summary>Set (from another thread) when the lender died.</summary>
    public volatile bool Revoked;

    /// <summary>Slots still free for the lessee; a private copy of the lender's bits.</summary>
    public ulong[] FreeSlots { get; } = (ulong[])info.FreeSlots.Clone();

    /// <summary>Takes the next free slot's address; false when the lease is exhausted.</summary>
    public bool TryTake(out ulong address)
    {
        ulong[] bits = FreeSlots;
        for (; _wordIndex < bits.Length; _wordIndex++)
        {
            ulong word = bits[_wordIndex];
            if (word != 0)
            {
                int bit = System.Numerics.BitOperations.TrailingZeroCount(word);
                bits[_wordIndex] = word & (word - 1);
                int slot = (_wordIndex << 6) + bit;
                if (slot < Info.Objects)
                {
                    address = Info.SpanBase + (ulong)slot * (ulong)Info.ElemSize;
                    return true;
                }
            }
        }

        address = 0;
        return false;
    }

    /// <summary>The lease as the lessee reports it.</summary>
    public LeaseRecord ToRecord(string lesseeNode, ushort lesseeGeneration) => new(Info.Key, Info.LenderNode, lesseeNode, Info.SpanClass, lesseeGeneration);
}
