using ClusterHeap.Heap;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The roots clients hold on one node (docs/DESIGN.md §12): one <see cref="RootSet"/> per client in this node's heap,
/// holding client pointers (generation and address) to objects of this node. A malloc roots the pointer it returns for
/// the client that asked (GcGateFilter.cs); a free of the object, or the client's release, removes it; a client whose
/// lease ended loses the whole set at the next cycle. The anonymous client (calls that carry no client id) has no lease:
/// its roots stay until released or freed.
/// <para>
/// Concurrency model: guarded by <c>_lock</c>; the marker reads the root sets with the world stopped (the gate closed,
/// no gated call in flight), when nothing changes them. Invariant: <c>Handles</c> of a client maps each pointer it roots
/// to the handle of its word in that client's set, and every non-zero word of the set is in <c>Handles</c>.
/// </para>
/// </summary>
public sealed class ClientRoots
{
    private readonly NodeHeap _heap;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, Client> _clients = [];   // guarded by _lock

    private sealed class Client(RootSet set)
    {
        public RootSet Set { get; } = set;
        public Dictionary<ulong, int> Handles { get; } = [];
    }

    public ClientRoots(NodeHeap heap) => _heap = heap;

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

    /// <summary>Roots <paramref name="pointer"/> for <paramref name="client"/> (once: rooting it again changes nothing).</summary>
    public void Add(string client, ulong pointer)
    {
        using (_lock.EnterScope())
        {
            if (!_clients.TryGetValue(client, out Client? c))
            {
                c = new Client(_heap.CreateRoots());
                _clients[client] = c;
            }

            if (!c.Handles.ContainsKey(pointer))
            {
                c.Handles[pointer] = c.Set.Add(pointer);
            }
        }
    }

    /// <summary>Drops <paramref name="client"/>'s root of <paramref name="pointer"/>; false when it held none.</summary>
    public bool Release(string client, ulong pointer)
    {
        using (_lock.EnterScope())
        {
            if (!_clients.TryGetValue(client, out Client? c) || !c.Handles.Remove(pointer, out int handle))
            {
                return false;
            }

            c.Set.Remove(handle);
            return true;
        }
    }

    /// <summary>The object at <paramref name="pointer"/> was freed: no client roots it any more.</summary>
    public void Freed(ulong pointer)
    {
        using (_lock.EnterScope())
        {
            foreach (Client c in _clients.Values)
            {
                if (c.Handles.Remove(pointer, out int handle))
                {
                    c.Set.Remove(handle);
                }
            }
        }
    }

    /// <summary>Roots <paramref name="client"/> holds here.</summary>
    public int Count(string client)
    {
        using (_lock.EnterScope())
        {
            return _clients.TryGetValue(client, out Client? c) ? c.Handles.Count : 0;
        }
    }

    /// <summary>
    /// Drops the root sets of the clients in <paramref name="dropped"/>, and when <paramref name="dropUnknown"/> of every
    /// client not in <paramref name="live"/> (never the anonymous one). Returns how many clients lost their roots.
    /// </summary>
    public int Drop(IReadOnlyCollection<string> live, IReadOnlyCollection<string> dropped, bool dropUnknown)
    {
        var liveSet = new HashSet<string>(live);
        var droppedSet = new HashSet<string>(dropped);
        using (_lock.EnterScope())
        {
            string[] gone = [.. _clients.Keys.Where(k => k != Contracts.GcKeys.Anonymous && (droppedSet.Contains(k) || (dropUnknown && !liveSet.Contains(k))))];
            foreach (string k in gone)
            {
                _heap.ReleaseRoots(_clients[k].Set);
                _clients.Remove(k);
            }

            return gone.Length;
        }
    }
}
