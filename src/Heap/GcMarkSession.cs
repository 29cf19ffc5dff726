using System.Diagnostics;

namespace ClusterHeap.Heap;

/// <summary>
/// One node heap's part in a collection coordinated from outside (the cluster's cycle): the same cycle as
/// <see cref="NodeHeap.Collect"/>, cut into steps a coordinator drives. Every step hands back the words the mark found
/// pointing outside this arena (marks for other nodes: the coordinator routes them to their owners' <see cref="Shade"/>).
/// <see cref="Finish"/> starts the sweep exactly as a local cycle does; <see cref="Abort"/> drops every mark and sweeps
/// nothing, so a cycle that lost a node (or its coordinator) frees nothing on its evidence. One session at a time per
/// heap; while one is open the heap starts no cycle of its own (the pacer's and out-of-memory cycles wait;
/// <see cref="NodeHeap.Collect"/> refuses), and a local concurrent mark that was running is dropped.
/// <para>
/// <b>Stop the world</b> (<see cref="NodeHeap.BeginMarkSession"/>): finishes the last sweep and flushes the mcaches;
/// <see cref="ShadeRoots"/> marks from this heap's root sets and <see cref="Shade"/> from routed words. The coordinator
/// stops the mutators for the whole session (no Malloc, free or write between steps); each step takes the world lock's
/// exclusive side for itself. Termination: a round in which no node's step returned a word and every word sent was
/// received.
/// </para>
/// <para>
/// <b>Concurrent</b> (<see cref="NodeHeap.BeginConcurrentMarkSession"/>, GcConcurrent.cs): Begin is pause 1 — the last
/// sweep finishes, the mcaches are flushed, every root set is shaded (a snapshot; foreign root words wait in the outbox
/// for the first step), the write barrier turns on and allocation is born marked — and then the mutators run. While
/// they run, the coordinator calls <see cref="ShadeRoots"/> (returns the roots' foreign words), <see cref="Shade"/> and
/// <see cref="MarkStep"/> (both drain what the barrier queued, then grey objects; they take only the mark lock, never
/// the world); foreign words that the barrier shades reach the outbox the same way. Mark termination, without
/// guessing: the coordinator stops the mutators of every node (as for a stop-the-world session), then calls
/// <see cref="MarkTermination"/> on each — it drains the barrier's queue and every grey object with this heap's world
/// stopped and reports <see cref="GcMarkTermination.Done"/> when nothing is grey and nothing is outgoing — and routes
/// what comes back through <see cref="Shade"/> (which, with the mutators stopped, leaves nothing queued) until a round
/// in which every node reported Done, no step returned a word, and every word sent was received; then
/// <see cref="Finish"/> on every node (pause 2: barrier off, mcaches flushed, checkmark if asked, sweep). Finish drains
/// once more and refuses — throws, the session stays open, the words stay in the outbox for the next step — if that
/// drain found words for other nodes: termination was declared while a mutator still ran. A coordinator that finds
/// much work at termination may let the mutators run again and go back to steps (Go's gcMarkDone does the same).
/// </para>
/// </summary>
public sealed class GcMarkSession
{
    private readonly NodeHeap _heap;
    private readonly List<ulong> _outbox = [];      // guarded by the step that runs (world lock or mark lock)
    private readonly long _t0, _t1, _liveBefore;
    private long _roots;

    internal GcMarkSession(NodeHeap heap, long t0, long t1, long liveBefore, bool concurrent)
    {
        _heap = heap;
        _t0 = t0;
        _t1 = t1;
        _liveBefore = liveBefore;
        IsConcurrent = concurrent;
    }

    /// <summary>True until <see cref="Finish"/> or <see cref="Abort"/>.</summary>
    public bool IsOpen { get; private set; } = true;

    /// <summary>Mutators run while this session marks (begun by <see cref="NodeHeap.BeginConcurrentMarkSession"/>).</summary>
    public bool IsConcurrent { get; }

    /// <summary>What the mark found so far on this heap (foreign words included in <c>Foreign</c>; born-marked objects not).</summary>
    public MarkCounts Counts => IsConcurrent ? _heap.ConcurrentSessionCounts(this) : _heap.RunSessionStep(this, () => { });

    internal void Collect(ulong word) => _outbox.Add(word);

    internal long Roots
    {
        get => _roots;
        set => _roots = value;
    }

    /// <summary>
    /// Spans the session's begin swept inside its pause (sweep termination: what the last cycle left unswept). 0 when
    /// <see cref="NodeHeap.SweepBeforeStop"/> ran after the last cycle ended, as a coordinator arranges.
    /// </summary>
    public long SweptInPause { get; internal set; }

    /// <summary>Words waiting in the outbox for the next step.</summary>
    internal int PendingOutgoing => _outbox.Count;

    internal ulong[] TakeOutbox()
    {
        ulong[] words = [.. _outbox];
        _outbox.Clear();
        return words;
    }

    /// <summary>
    /// Marks from this heap's root sets; returns the words found pointing into other arenas. Concurrent: the roots were
    /// shaded in Begin's pause (a snapshot: greyed, not scanned); this returns the root words that point into other
    /// arenas and scans nothing — the mark itself runs in <see cref="MarkStep"/>, beside the mutators, as Go's does.
    /// </summary>
    public ulong[] ShadeRoots()
    {
        ThrowIfClosed();
        if (IsConcurrent) return _heap.RunConcurrentSessionStep(this, () => { }, maxObjects: 0).Outgoing;
        return Step(() => _roots += _heap.ShadeRootsForSession());
    }

    /// <summary>Marks from words other nodes found pointing here (each checked, never trusted); returns this step's foreign words.</summary>
    public ulong[] Shade(ReadOnlySpan<ulong> words)
    {
        ThrowIfClosed();
        ulong[] copy = words.ToArray();
        if (IsConcurrent) return _heap.RunConcurrentSessionStep(this, () => _heap.ShadeForSession(copy)).Outgoing;
        return Step(() => _heap.ShadeForSession(copy));
    }

    /// <summary>
    /// Concurrent: one slice of mark work while mutators run — the barrier's queue, then up to
    /// <paramref name="maxObjects"/> grey objects. <see cref="GcMarkStep.Drained"/>: nothing grey or queued was left at
    /// the step's end (mutators may queue more at once; only <see cref="MarkTermination"/> decides).
    /// </summary>
    public GcMarkStep MarkStep(long maxObjects = long.MaxValue)
    {
        ThrowIfClosed();
        ArgumentOutOfRangeException.ThrowIfLessThan(maxObjects, 1);
        if (!IsConcurrent) throw new InvalidOperationException("MarkStep is for a concurrent session; a stop-the-world session marks in ShadeRoots and Shade");
        return _heap.RunConcurrentSessionStep(this, () => { }, maxObjects);
    }

    /// <summary>
    /// Mark termination's step on this heap (the contract is in the overview): with this heap's world stopped for the
    /// step, drains the barrier's queue and every grey object and reports what is outgoing. On a stop-the-world session
    /// it reports the same (nothing is ever queued there).
    /// </summary>
    public GcMarkTermination MarkTermination()
    {
        ThrowIfClosed();
        return _heap.RunTerminationStep(this);
    }

    private ulong[] Step(Action shade)
    {
        ThrowIfClosed();
        _heap.RunSessionStep(this, shade);
        return TakeOutbox();
    }

    /// <summary>
    /// Marking is done everywhere: the sweep starts from this heap's marks, as a local cycle's would. With
    /// <paramref name="sweepInBackground"/> false the background sweeper is not queued yet (a coordinator whose other
    /// nodes still wait for their finish queues it with <see cref="NodeHeap.StartBackgroundSweep"/>, so that it takes
    /// no core while they do); the spans are swept meanwhile as ever, by refills, reclaims and the next cycle's start.
    /// </summary>
    public GcCycle Finish(bool sweepInBackground = true)
    {
        ThrowIfClosed();
        _heap.HoldBackgroundSweep = !sweepInBackground;
        GcCycle cycle = IsConcurrent
            ? _heap.FinishConcurrentSession(this)
            : _heap.FinishSession(this, _t0, _t1, Stopwatch.GetTimestamp(), _liveBefore, _roots);
        IsOpen = false;
        return cycle;
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

/// <summary>A concurrent session's mark step: the words for other nodes, whether the local work ran dry, the counts so far.</summary>
public readonly record struct GcMarkStep(ulong[] Outgoing, bool Drained, MarkCounts Counts);

/// <summary>
/// A mark-termination report (GcMarkSession.MarkTermination): <see cref="Outgoing"/> the words for other nodes this
/// drain found; <see cref="Done"/> when nothing is grey here and nothing is outgoing; <see cref="BarrierShaded"/> the
/// words the barrier has queued on this heap so far (unchanged between two reports: no mutator wrote a pointer here).
/// </summary>
public sealed record GcMarkTermination(ulong[] Outgoing, bool Done, MarkCounts Counts, long BarrierShaded);
