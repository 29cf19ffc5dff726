using System.Diagnostics;

namespace ClusterHeap.Grains.CentralHeap;

/// <summary>
/// The time a forced run of cycles has left (CentralHeapGrain.Gc.cs, ClusterHeapOptions.ForcedGcDeadline): its attempts
/// are bounded by it so that the caller reads why no cycle completed before its own response timeout. A paced run has
/// none (<c>length</c> null): nobody waits on it.
/// </summary>
internal sealed class ForcedDeadline(TimeSpan? length)
{
    private static readonly TimeSpan MinAttempt = TimeSpan.FromSeconds(2);   // less left than this: no further attempt (its ping alone may take a fifth)

    private long _start = Stopwatch.GetTimestamp();

    /// <summary>The time left; <see cref="TimeSpan.MaxValue"/> without a deadline.</summary>
    public TimeSpan Left => length is { } l ? l - Stopwatch.GetElapsedTime(_start) : TimeSpan.MaxValue;

    /// <summary>Too little is left to start another attempt.</summary>
    public bool TooLateForAnother => Left < MinAttempt;

    /// <summary>The time since the deadline (re)started.</summary>
    public TimeSpan Elapsed => Stopwatch.GetElapsedTime(_start);

    /// <summary><paramref name="most"/>, or the time left when that is shorter (never negative).</summary>
    public TimeSpan Bound(TimeSpan most)
    {
        TimeSpan left = Left;
        return left >= most ? most : left > TimeSpan.Zero ? left : TimeSpan.Zero;
    }

    /// <summary>Starts the deadline again: a node was lost, and the attempt over the survivors gets the whole of it.</summary>
    public void Restart() => _start = Stopwatch.GetTimestamp();
}
