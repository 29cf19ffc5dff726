using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The coordinator's clock over one cluster cycle (GcCycleParts): each <see cref="Lap"/> charges the time since the
/// previous one to a step — one round of calls to every node at once, round trips included. ClusterCycleRunner laps
/// after each step of its happy path; an aborted cycle reports none.
/// </summary>
internal sealed class CycleLaps
{
    private readonly long[] _ticks = new long[(int)Step.Finish + 1];
    private long _last = Stopwatch.GetTimestamp();
    private long _rounds;

    /// <summary>The steps a lap is charged to.</summary>
    public enum Step
    {
        Sweep, Stop, Begin, Resume, Mark, Terminate, Finish,
    }

    /// <summary>Charges the time since the last lap to <paramref name="step"/>; returns now.</summary>
    public long Lap(Step step)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)step] += now - _last;
        _last = now;
        if (step is not (Step.Sweep or Step.Mark or Step.Terminate))
        {
            _rounds++;
        }

        return now;
    }

    /// <summary><paramref name="waves"/> rounds of termination waves ran inside a pause; returns them.</summary>
    public long Rounds(long waves)
    {
        _rounds += waves;
        return waves;
    }

    /// <summary>The parts so far.</summary>
    public GcCycleParts Parts() => new(Ms(Step.Sweep), Ms(Step.Stop), Ms(Step.Begin), Ms(Step.Resume), Ms(Step.Mark),
        Ms(Step.Terminate), Ms(Step.Finish), _rounds);

    private double Ms(Step step) => Stopwatch.GetElapsedTime(0, _ticks[(int)step]).TotalMilliseconds;
}
