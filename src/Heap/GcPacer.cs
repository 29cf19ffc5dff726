namespace ClusterHeap.Heap;

/// <summary>
/// The pacer (Go's gcControllerState, mgcpacer.go), for a stop-the-world collector: the next cycle starts when heap_live
/// (MHeap.HeapLive) reaches the heap goal, checked at Go's shouldhelpgc points — an mcache refill and a large
/// allocation (NodeHeap.Gc.cs).
/// <code>
///   goal = marked × (1 + GOGC/100)            marked: bytes the last mark found live (Go's heap_marked)
///          at least 4 MiB × GOGC/100           Go's heapminimum, also the goal before the first cycle
///          at most the memory limit            GOMEMLIMIT (here: heap bytes, not all of the process's memory)
///   GOGC &lt; 0 ("off"): goal = the memory limit, so with no limit collection never starts by itself
/// </code>
/// Go's trigger sits below the goal so that concurrent marking finishes by it (a feedback controller aiming at 25 % of
/// CPU); a stop-the-world cycle finishes the moment it starts, so its trigger is the goal itself, and a concurrent one
/// (GcConcurrent.cs) starts at <see cref="Trigger"/>, a fixed ratio (no feedback controller).
/// Concurrency model: written with the world stopped (the end of a cycle) or by the owner of the settings; read anywhere.
/// </summary>
public sealed class GcPacer
{
    /// <summary>Go's defaultHeapMinimum: 4 MiB at GOGC = 100.</summary>
    public const long DefaultHeapMinimum = 4 << 20;

    private int _gcPercent;
    private long _memoryLimit;
    private long _marked;
    private long _goal;

    public GcPacer(int gcPercent, long memoryLimit)
    {
        _gcPercent = gcPercent;
        _memoryLimit = memoryLimit;
        Recompute();
    }

    /// <summary>GOGC: the heap may grow this many percent over what the last mark found live; negative = off.</summary>
    public int GcPercent
    {
        get => Volatile.Read(ref _gcPercent);
        set
        {
            Volatile.Write(ref _gcPercent, value);
            Recompute();
        }
    }

    /// <summary>GOMEMLIMIT: the goal never exceeds it. long.MaxValue = no limit.</summary>
    public long MemoryLimit
    {
        get => Volatile.Read(ref _memoryLimit);
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            Volatile.Write(ref _memoryLimit, value);
            Recompute();
        }
    }

    /// <summary>Bytes the last mark found live (0 before the first cycle).</summary>
    public long Marked => Volatile.Read(ref _marked);

    /// <summary>The heap goal (Go's next_gc, MemStats.NextGC): the next cycle starts when heap_live reaches it. long.MaxValue = never.</summary>
    public long Goal => Volatile.Read(ref _goal);

    /// <summary>
    /// Where a concurrent cycle starts (Go's trigger, here its first-cycle ratio, fixed): 7/8 of the way from the bytes
    /// marked to the goal, so the mark can finish before heap_live reaches the goal.
    /// </summary>
    public long Trigger
    {
        get
        {
            long goal = Goal, marked = Math.Min(Marked, goal);
            return goal == long.MaxValue ? goal : marked + (goal - marked) / 8 * 7;
        }
    }

    /// <summary>A cycle ended having marked <paramref name="marked"/> bytes: the next goal follows from it.</summary>
    public void EndCycle(long marked)
    {
        Volatile.Write(ref _marked, marked);
        Recompute();
    }

    /// <summary>The goal for <paramref name="marked"/> live bytes under GOGC <paramref name="gcPercent"/> and the limit.</summary>
    public static long GoalFor(long marked, int gcPercent, long memoryLimit)
    {
        if (gcPercent < 0) return memoryLimit;
        long growth = marked / 100 * gcPercent + marked % 100 * gcPercent / 100;
        long goal = Math.Max(marked + growth, DefaultHeapMinimum * gcPercent / 100);
        return Math.Min(goal, memoryLimit);
    }

    private void Recompute() => Volatile.Write(ref _goal, GoalFor(Marked, GcPercent, MemoryLimit));
}
