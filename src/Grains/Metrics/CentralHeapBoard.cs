namespace ClusterHeap.Grains.Metrics;

/// <summary>
/// The central heap's view as its metrics show it, posted by the activation after each call it
/// handles (and when a cycle it started on its own ends). Immutable: observers on other threads read whole snapshots,
/// never the grain's fields.
/// </summary>
public sealed record CentralSnapshot(
    int Nodes,
    long TotalGranted,
    long MemoryLimit,
    ushort LastGeneration,
    IReadOnlyList<CentralNodeRow> PerNode,
    CentralGcView Gc);

/// <summary>One live node as the central heap knows it.</summary>
public readonly record struct CentralNodeRow(string Node, int Slot, long Granted);

/// <summary>
/// A silo singleton where the central heap grain, when its one activation lives on this silo, posts
/// its <see cref="CentralSnapshot"/> for the <see cref="ClusterHeapMeter"/>. Every other silo's board
/// stays empty, so only the hosting silo reports the central view (a scrape of every silo sees it once).
/// </summary>
/// <remarks>Concurrency model: one volatile reference, swapped whole.</remarks>
public sealed class CentralHeapBoard
{
    private volatile Posting? _posting;

    /// <summary>The latest snapshot, or null while no central heap activation lives on this silo.</summary>
    public CentralSnapshot? Current => _posting?.Snapshot;

    /// <summary>The activation <paramref name="owner"/> posts its view (replacing any other's).</summary>
    public void Post(object owner, CentralSnapshot snapshot) => _posting = new Posting(owner, snapshot);

    /// <summary>The activation <paramref name="owner"/> is going: its view goes with it (a newer one's stays).</summary>
    public void Withdraw(object owner)
    {
        Posting? posting = _posting;
        if (posting is not null && ReferenceEquals(posting.Owner, owner))
        {
            Interlocked.CompareExchange(ref _posting, null, posting);
        }
    }

    private sealed record Posting(object Owner, CentralSnapshot Snapshot);
}
