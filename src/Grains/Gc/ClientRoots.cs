using ClusterHeap.Contracts;
using ClusterHeap.Heap;
using Orleans.Runtime;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The roots clients hold on one node (docs/DESIGN.md §12). A client is its Orleans connection's grain id (the
/// <c>sys.client/…</c> id every call it makes carries as its source). Every client's roots on this node are words of one
/// <see cref="RootSet"/> in this node's heap — the marker reads that set and nothing else — one word per (client,
/// pointer); <see cref="RootIndex"/> finds the word of a (client, pointer) and every word of a pointer, so a free drops
/// its object's roots without knowing who rooted it. A malloc roots the pointers it returns for the client that asked,
/// a batch under one lock acquisition (GcGateFilter.cs); a free of the object, or the client's release, removes the root;
/// a client whose lease ended loses all of its roots at the next cycle. A client that never held a lease (a connection
/// without ClientRootLease: the plan never names it live) keeps its roots until it releases or frees them.
/// <para>
/// Concurrency model: guarded by <c>_lock</c>; the marker reads the set with the world stopped (the gate closed, no
/// gated call in flight), when nothing changes it. Invariants: <c>_index</c> holds exactly one entry per non-zero word
/// of <c>_set</c>, naming that word's handle and its client's number; a client's <see cref="Client.Count"/> is its
/// entries; <c>_byNumber[c.Number] == c</c> for every client in <c>_clients</c>; <c>_added</c> only grows.
/// </para>
/// </summary>
public sealed class ClientRoots
{
    private readonly NodeHeap _heap;
    private readonly Lock _lock = new();
    private readonly RootSet _set;                                // every client's roots here; guarded by _lock
    private readonly RootIndex _index = new();                    // guarded by _lock
    private readonly Dictionary<GrainId, Client> _clients = [];   // guarded by _lock
    private readonly List<Client?> _byNumber = [];                // guarded by _lock
    private readonly Stack<int> _freeNumbers = new();             // guarded by _lock
    private Client? _last;                                        // the last client rooted for; guarded by _lock
    private long _added;                                          // roots ever added (each entry's stamp); written under _lock

    private sealed class Client(GrainId id, int number)
    {
        public GrainId Id { get; } = id;
        public int Number { get; } = number;
        public int Count { get; set; }          // roots it holds here
        public bool Leased { get; set; }        // a cycle's plan named it live: it holds a lease, and can lose it
    }

    public ClientRoots(NodeHeap heap)
    {
        _heap = heap;
        _set = heap.CreateRoots();
    }

    /// <summary>Clients holding a root set here.</summary>
    public int Clients
    {
        get
        {
            using (_lock.EnterScope())
            {
                return _clients.Count;
            }
        }
    }

    /// <summary>
    /// Read before a free runs; pass to <see cref="Freed(ReadOnlySpan{HeapPointer}, HeapError?[], long)"/>: only roots
    /// added before it are dropped, so a root the next malloc of the same address took meanwhile stays.
    /// </summary>
    public long Stamp => Volatile.Read(ref _added);

    /// <summary>Roots <paramref name="pointer"/> for <paramref name="client"/> (once: rooting it again only renews the root's stamp).</summary>
    public void Add(GrainId client, ulong pointer)
    {
        using (_lock.EnterScope())
        {
            AddLocked(ClientLocked(client), pointer);
        }
    }

    /// <summary>
    /// Roots for <paramref name="client"/> every pointer of <paramref name="pointers"/> that is this node's (slot and
    /// generation), other than the zero-size base; returns the others, in batch order, for their owners to root — null
    /// when there are none (the common batch, all this node's, allocates nothing). Null pointers are neither.
    /// </summary>
    public List<HeapPointer>? AddBatch(GrainId client, ReadOnlySpan<HeapPointer> pointers, int slot, ushort generation, ulong zeroBase)
    {
        List<HeapPointer>? foreign = null;
        using (_lock.EnterScope())
        {
            Client c = ClientLocked(client);
            foreach (HeapPointer p in pointers)
            {
                if (p.Address == zeroBase || p.IsNull) continue;
                if (p.Slot == slot && p.Generation == generation) AddLocked(c, p.Value);
                else (foreign ??= []).Add(p);
            }
        }

        return foreign;
    }

    /// <summary>Drops <paramref name="client"/>'s root of <paramref name="pointer"/>; false when it held none.</summary>
    public bool Release(GrainId client, ulong pointer)
    {
        using (_lock.EnterScope())
        {
            if (!_clients.TryGetValue(client, out Client? c) || !_index.TryRemove(pointer, c.Number, out int handle))
            {
                return false;
            }

            _set.Remove(handle);
            c.Count--;
            return true;
        }
    }

    /// <summary>The object at <paramref name="pointer"/> was freed: no client roots it any more (roots added before <paramref name="stamp"/>).</summary>
    public void Freed(ulong pointer, long stamp)
    {
        using (_lock.EnterScope())
        {
            FreedLocked(pointer, stamp);
        }
    }

    /// <summary>Every pointer whose error is null was freed (<see cref="Freed(ulong, long)"/> for each), under one lock acquisition.</summary>
    public void Freed(ReadOnlySpan<HeapPointer> pointers, HeapError?[]? errors, long stamp)
    {
        using (_lock.EnterScope())
        {
            if (_index.Count == 0) return;
            for (int i = 0; i < pointers.Length; i++)
            {
                if (errors is null || errors[i] is null) FreedLocked(pointers[i].Value, stamp);
            }
        }
    }

    /// <summary>Roots <paramref name="client"/> holds here.</summary>
    public int Count(GrainId client)
    {
        using (_lock.EnterScope())
        {
            return _clients.TryGetValue(client, out Client? c) ? c.Count : 0;
        }
    }

    /// <summary>
    /// A cycle's plan (before its mark): the clients in <paramref name="live"/> hold leases; those in
    /// <paramref name="dropped"/> lost theirs, and so, when <paramref name="dropUnknown"/>, did every client here that held
    /// one and is not in <paramref name="live"/>. Drops the roots of the clients that lost their lease and forgets clients
    /// without roots. Returns how many clients lost their roots.
    /// </summary>
    public int Drop(IReadOnlyCollection<GrainId> live, IReadOnlyCollection<GrainId> dropped, bool dropUnknown)
    {
        var liveSet = new HashSet<GrainId>(live);
        var droppedSet = new HashSet<GrainId>(dropped);
        using (_lock.EnterScope())
        {
            int lost = 0;
            foreach (Client c in _clients.Values.ToArray())
            {
                bool isLive = liveSet.Contains(c.Id);
                c.Leased |= isLive;
                if (droppedSet.Contains(c.Id) || (dropUnknown && c.Leased && !isLive))
                {
                    lost += c.Count > 0 ? 1 : 0;
                    foreach ((ulong key, int handle) in _index.EntriesOf(c.Number))
                    {
                        _index.TryRemove(key, c.Number, out _);
                        _set.Remove(handle);
                    }

                    c.Count = 0;
                }

                if (c.Count == 0)
                {
                    Forget(c);
                }
            }

            return lost;
        }
    }

    private Client ClientLocked(GrainId id)
    {
        if (_last is { } last && last.Id == id) return last;
        if (!_clients.TryGetValue(id, out Client? c))
        {
            int number = _freeNumbers.Count > 0 ? _freeNumbers.Pop() : _byNumber.Count;
            c = new Client(id, number);
            if (number == _byNumber.Count) _byNumber.Add(c);
            else _byNumber[number] = c;
            _clients[id] = c;
        }

        return _last = c;
    }

    private void AddLocked(Client c, ulong pointer)
    {
        // Rooted by this client already: the root of an older object at this address whose free has not dropped its roots
        // yet (FreeRacingMallocRootTests). The root is now the new object's, so it takes this add's stamp: that free, which
        // read its stamp before it freed, must not drop it.
        if (!_index.TryRestamp(pointer, c.Number, _added))
        {
            int handle = _set.Add(pointer);
            _index.TryAdd(pointer, c.Number, handle, _added);
            c.Count++;
        }

        Volatile.Write(ref _added, _added + 1);
    }

    private void FreedLocked(ulong pointer, long stamp)
    {
        while (_index.TryRemoveOlder(pointer, stamp, out int number, out int handle))
        {
            _set.Remove(handle);
            _byNumber[number]!.Count--;
        }
    }

    private void Forget(Client c)
    {
        _clients.Remove(c.Id);
        _byNumber[c.Number] = null;
        _freeNumbers.Push(c.Number);
        if (ReferenceEquals(_last, c)) _last = null;
    }
}
