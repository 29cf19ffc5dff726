using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The coordinator's clock over one cluster cycle (GcCycleParts): each <see cref="Lap"/> charges the time since the
/// previous one to a step — one round of calls to every node at once, round trips included. ClusterCycleRunner laps
/// after each step of its happy path; an aborted cycle reports none. It also marks where each pause starts and ends
/// (the .NET collector's pause time and collections in this process between the two, and the host clock's times of
/// the rounds, GcCycleTimes, so the nodes' gate openings can be placed on the same timeline).
/// </summary>
internal sealed class CycleLaps
{
    private readonly long[] _ticks = new long[(int)Step.Finish + 1];
    private long _last = Stopwatch.GetTimestamp();
    private long _rounds;
    private long _windowGc, _windowGcs;             // at the open pause's start: GC pause ticks (TimeSpan's), collections
    private long _managedGc, _managedGcs;           // in the pauses so far
    private int _pauses;                            // pauses started
    private long _stopAt, _resumeAt, _resumedAt, _stop2At, _finishAt, _endAt;   // host clock, µs

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

    /// <summary>A pause starts at <paramref name="at"/> (a Stopwatch timestamp): its stop round is sent now.</summary>
    public void PauseStarts(long at)
    {
        if (_pauses++ == 0)
        {
            _stopAt = HostClock.ToUs(at);
        }
        else
        {
            _stop2At = HostClock.ToUs(at);
        }

        _windowGc = GC.GetTotalPauseDuration().Ticks;
        _windowGcs = GC.CollectionCount(0);
    }

    /// <summary>The round that opens the gates (resume, or the finish when <paramref name="finish"/>) is sent at <paramref name="at"/>.</summary>
    public void Opening(long at, bool finish)
    {
        if (finish)
        {
            _finishAt = HostClock.ToUs(at);
        }
        else
        {
            _resumeAt = HostClock.ToUs(at);
        }
    }

    /// <summary>The pause's last reply came in at <paramref name="at"/>.</summary>
    public void PauseEnds(long at, bool finish)
    {
        if (finish)
        {
            _endAt = HostClock.ToUs(at);
        }
        else
        {
            _resumedAt = HostClock.ToUs(at);
        }

        _managedGc += GC.GetTotalPauseDuration().Ticks - _windowGc;
        _managedGcs += GC.CollectionCount(0) - _windowGcs;
    }

    /// <summary>The parts so far.</summary>
    public GcCycleParts Parts() => new(Ms(Step.Sweep), Ms(Step.Stop), Ms(Step.Begin), Ms(Step.Resume), Ms(Step.Mark),
        Ms(Step.Terminate), Ms(Step.Finish), _rounds, TimeSpan.FromTicks(_managedGc).TotalMilliseconds, _managedGcs,
        new GcCycleTimes(HostClock.Id, _stopAt, _resumeAt, _resumedAt, _stop2At, _finishAt, _endAt));

    private double Ms(Step step) => Stopwatch.GetElapsedTime(0, _ticks[(int)step]).TotalMilliseconds;
}
