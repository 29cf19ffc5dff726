using System.Diagnostics;

namespace ClusterHeap.Heap;

/// <summary>
/// One node heap's part in a collection coordinated from outside (the cluster's stop-the-world cycle): the same cycle as
/// <see cref="NodeHeap.Collect"/>, cut into steps a coordinator drives. <see cref="NodeHeap.BeginMarkSession"/> finishes
/// the last sweep and flushes the mcaches; <see cref="ShadeRoots"/> marks from this heap's root sets and
/// <see cref="Shade"/> from words other nodes found pointing here; each step drains the marker and hands back the words it
/// found pointing outside this arena (marks for other nodes, the coordinator routes them); <see cref="Finish"/> starts the
/// sweep exactly as a local cycle does; <see cref="Abort"/> drops every mark and sweeps nothing, so a cycle that lost a
/// node (or its coordinator) frees nothing on its evidence.
/// <para>
/// Concurrency model: the coordinator stops the mutators for the whole session (no Malloc, free or write between steps);
/// each step takes the world lock's exclusive side for itself. While a session is open, the heap starts no cycle of its
/// own (the pacer's and out-of-memory cycles wait; <see cref="NodeHeap.Collect"/> refuses). One session at a time.
/// </para>
/// </summary>
public sealed class GcMarkSession
{
    private readonly NodeHeap _heap;
    private readonly List<ulong> _outbox = [];
    private readonly long _t0, _t1, _liveBefore;
    private long _roots;

    internal GcMarkSession(NodeHeap heap, long t0, long t1, long liveBefore)
    {
        _heap = heap;
        _t0 = t0;
        _t1 = t1;
        _liveBefore = liveBefore;
    }

    /// <summary>True until <see cref="Finish"/> or <see cref="Abort"/>.</summary>
    public bool IsOpen { get; private set; } = true;

    /// <summary>What the mark found so far on this heap (foreign words included in <c>Foreign</c>).</summary>
    public MarkCounts Counts => _heap.RunSessionStep(this, () => { });

    internal void Collect(ulong word) => _outbox.Add(word);

    /// <summary>Marks from this heap's root sets; returns the words found pointing into other arenas.</summary>
    public ulong[] ShadeRoots() => Step(() => _roots += _heap.ShadeRootsForSession());

    /// <summary>Marks from words other nodes found pointing here (each checked, never trusted); returns this step's foreign words.</summary>
    public ulong[] Shade(ReadOnlySpan<ulong> words)
    {
        ulong[] copy = words.ToArray();
        return Step(() => _heap.ShadeForSession(copy));
    }

    private ulong[] Step(Action shade)
    {
        ThrowIfClosed();
        _outbox.Clear();
        _heap.RunSessionStep(this, shade);
        return [.. _outbox];
    }

    /// <summary>Marking is done everywhere: the sweep starts from this heap's marks, as a local cycle's would.</summary>
    public GcCycle Finish()
    {
        ThrowIfClosed();
        IsOpen = false;
        return _heap.FinishSession(this, _t0, _t1, Stopwatch.GetTimestamp(), _liveBefore, _roots);
    }

    /// <summary>The cycle cannot finish (a node died, the coordinator moved): every mark is dropped, nothing is swept.</summary>
    public void Abort()
    {
        if (!IsOpen) return;
        IsOpen = false;
        _heap.AbortSession(this);
    }

    private void ThrowIfClosed()
    {
        if (!IsOpen) throw new InvalidOperationException("this mark session is finished or aborted");
    }
}
