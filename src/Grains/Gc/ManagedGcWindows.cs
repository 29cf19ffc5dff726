namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The .NET collector in this process over a cycle's pause windows: its pause time and collections between each
/// window's start and end, summed (GcCycleParts.ManagedGcMs/ManagedGcs on the coordinator, kept by CycleLaps;
/// GcNodeParts' on a node, kept by StepClock). A window may start at a reading taken before it opens: a node's opens at
/// its reply before the stop, so the stop's way in counts too. Read once at each window's edge, never on a mutator's path.
/// </summary>
internal struct ManagedGcWindows
{
    private Reading _start;                     // the open window's start
    private long _pauseTicks, _collections;     // in the closed windows: pause time (TimeSpan ticks), collections

    /// <summary>The collector's totals at one moment: pause time (TimeSpan ticks) and collections (any generation counts in 0's).</summary>
    public readonly record struct Reading(long PauseTicks, long Collections)
    {
        public static Reading Now() => new(GC.GetTotalPauseDuration().Ticks, GC.CollectionCount(0));
    }

    /// <summary>A window opens, counted from <paramref name="start"/>.</summary>
    public void Open(Reading start) => _start = start;

    /// <summary>The open window ends now.</summary>
    public void Close()
    {
        var now = Reading.Now();
        _pauseTicks += now.PauseTicks - _start.PauseTicks;
        _collections += now.Collections - _start.Collections;
    }

    /// <summary>The collector's pause time in the closed windows, in ms.</summary>
    public readonly double Ms => TimeSpan.FromTicks(_pauseTicks).TotalMilliseconds;

    /// <summary>Its collections in the closed windows.</summary>
    public readonly long Collections => _collections;
}
