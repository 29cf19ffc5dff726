using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// Where a node's client roots are (Grains/Gc/ClientRoots.cs): an open-addressing hash table from a rooted pointer to each
/// (client number, handle in the node's root set, stamp) that roots it, in unmanaged memory, so rooting and unrooting
/// allocate nothing. A pointer rooted by several clients has one entry per client, all in the probe run that starts at
/// the pointer's home bucket (linear probing; removal shifts the run back, so no tombstones).
/// <para>
/// Concurrency model: none of its own; ClientRoots calls it under its lock. Invariants: a bucket is empty iff its key is
/// 0 (0 is never rooted); every entry sits in the probe run that starts at its key's home bucket (no empty bucket
/// between the two); (key, client) is unique; <see cref="Count"/> entries, at most half the buckets.
/// </para>
/// </summary>
public sealed unsafe class RootIndex : IDisposable
{
    private const int MinBuckets = 1024;

    [StructLayout(LayoutKind.Sequential)]
    private struct Entry
    {
        public ulong Key;        // the rooted pointer; 0 = empty bucket
        public long Stamp;       // ClientRoots' add counter when this root was added
        public int Handle;       // the word in the node's root set
        public int Client;       // ClientRoots' client number
    }

    private Entry* _buckets;
    private int _mask;           // buckets - 1 (a power of two)
    private int _shift;          // 64 - log2(buckets), for Fibonacci hashing
    private int _count;

    public RootIndex()
    {
        Allocate(MinBuckets);
    }

    /// <summary>Entries (one per rooting client per pointer).</summary>
    public int Count => _count;

    /// <summary>Adds (key, client) → handle; false (and nothing changes) when that client roots key already.</summary>
    public bool TryAdd(ulong key, int client, int handle, long stamp)
    {
        if (key == 0) throw new ArgumentOutOfRangeException(nameof(key), "0 is never rooted");
        if (2 * (_count + 1) > _mask + 1) Grow();
        int i = Home(key);
        while (_buckets[i].Key != 0)
        {
            if (_buckets[i].Key == key && _buckets[i].Client == client) return false;
            i = (i + 1) & _mask;
        }

        _buckets[i] = new Entry { Key = key, Stamp = stamp, Handle = handle, Client = client };
        _count++;
        return true;
    }

    /// <summary>
    /// Gives (key, client)'s entry the stamp <paramref name="stamp"/>; false (and nothing changes) when that client does
    /// not root key.
    /// </summary>
    public bool TryRestamp(ulong key, int client, long stamp)
    {
        int i = Find(key, client);
        if (i < 0) return false;
        _buckets[i].Stamp = stamp;
        return true;
    }

    /// <summary>True when <paramref name="client"/> roots <paramref name="key"/>.</summary>
    public bool Contains(ulong key, int client) => Find(key, client) >= 0;

    /// <summary>Removes (key, client); its handle, or false when that client does not root key.</summary>
    public bool TryRemove(ulong key, int client, out int handle)
    {
        int i = Find(key, client);
        if (i < 0)
        {
            handle = -1;
            return false;
        }

        handle = _buckets[i].Handle;
        RemoveAt(i);
        return true;
    }

    /// <summary>
    /// Removes one entry of <paramref name="key"/> added before <paramref name="before"/> (any client); false when none
    /// is left. Call until false to drop every such root of the key.
    /// </summary>
    public bool TryRemoveOlder(ulong key, long before, out int client, out int handle)
    {
        if (_count != 0)
        {
            for (int i = Home(key); _buckets[i].Key != 0; i = (i + 1) & _mask)
            {
                if (_buckets[i].Key == key && _buckets[i].Stamp < before)
                {
                    client = _buckets[i].Client;
                    handle = _buckets[i].Handle;
                    RemoveAt(i);
                    return true;
                }
            }
        }

        client = handle = -1;
        return false;
    }

    /// <summary>Every (key, handle) <paramref name="client"/> roots, for dropping a whole client (a cycle's rare path).</summary>
    public List<(ulong Key, int Handle)> EntriesOf(int client)
    {
        var entries = new List<(ulong, int)>();
        for (int i = 0; i <= _mask; i++)
        {
            if (_buckets[i].Key != 0 && _buckets[i].Client == client) entries.Add((_buckets[i].Key, _buckets[i].Handle));
        }

        return entries;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int Home(ulong key) => (int)((key * 0x9E3779B97F4A7C15UL) >> _shift);

    private int Find(ulong key, int client)
    {
        for (int i = Home(key); _buckets[i].Key != 0; i = (i + 1) & _mask)
        {
            if (_buckets[i].Key == key && _buckets[i].Client == client) return i;
        }

        return -1;
    }

    /// <summary>Empties bucket i and shifts later entries of the run back into it when their home allows.</summary>
    private void RemoveAt(int i)
    {
        int hole = i;
        for (int j = (i + 1) & _mask; _buckets[j].Key != 0; j = (j + 1) & _mask)
        {
            // The entry at j may fill the hole when its home is not cyclically inside (hole, j].
            if (((j - Home(_buckets[j].Key)) & _mask) >= ((j - hole) & _mask))
            {
                _buckets[hole] = _buckets[j];
                hole = j;
            }
        }

        _buckets[hole] = default;
        _count--;
    }

    private void Grow()
    {
        Entry* old = _buckets;
        int buckets = _mask + 1;
        Allocate(2 * buckets);
        for (int i = 0; i < buckets; i++)
        {
            if (old[i].Key == 0) continue;
            int j = Home(old[i].Key);
            while (_buckets[j].Key != 0) j = (j + 1) & _mask;
            _buckets[j] = old[i];
        }

        NativeMemory.Free(old);
    }

    private void Allocate(int buckets)
    {
        _buckets = (Entry*)NativeMemory.AllocZeroed((nuint)buckets, (nuint)sizeof(Entry));
        _mask = buckets - 1;
        _shift = 64 - System.Numerics.BitOperations.Log2((uint)buckets);
    }

    public void Dispose()
    {
        if (_buckets != null)
        {
            NativeMemory.Free(_buckets);
            _buckets = null;
        }

        GC.SuppressFinalize(this);
    }

    ~RootIndex() => Dispose();
}
