using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The coordinator's clock over one cluster cycle (GcCycleParts): each <see cref="Lap"/> charges the time since the
/// previous one to a step — one round of calls to every node at once, round trips included. ClusterCycleRunner laps
/// after each step of its happy path; an aborted cycle reports none. It also marks where the cluster's pause starts and
/// ends (stop the world's one; concurrent pause 2 — pause 1 is each node's own cut, clocked there), the .NET collector's
/// pause time and collections in this process between the two, and the host clock's times of the rounds
/// (GcCycleTimes), so the nodes' gate openings can be placed on the same timeline.
/// </summary>
internal sealed class CycleLaps
{
    private readonly long[] _ticks = new long[(int)Step.Finish + 1];
    private long _last = Stopwatch.GetTimestamp();
    private long _rounds;
    private ManagedGcWindows _managed;              // the .NET collector in the pauses so far
    private long _stopAt, _stop2At, _finishAt, _endAt;   // host clock, µs

    /// <summary>The steps a lap is charged to.</summary>
    public enum Step
    {
        Sweep, Cut, Stop, Begin, Mark, Terminate, Finish,
    }

    /// <summary>Charges the time since the last lap to <paramref name="step"/>; returns now.</summary>
    public long Lap(Step step)
    {
        long now = Stopwatch.GetTimestamp();
        _ticks[(int)step] += now - _last;
        _last = now;
        if (step is not (Step.Sweep or Step.Cut or Step.Mark or Step.Terminate))
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

    /// <summary>A concurrent cycle's cut round, which stops no node for another, is sent at <paramref name="at"/> (a Stopwatch timestamp).</summary>
    public void CutStarts(long at) => _stopAt = HostClock.ToUs(at);

    /// <summary>
    /// The cluster's pause starts at <paramref name="at"/> (a Stopwatch timestamp): its stop round is sent now —
    /// concurrent pause 2's (<paramref name="termination"/>) or stop the world's.
    /// </summary>
    public void PauseStarts(long at, bool termination)
    {
        if (termination)
        {
            _stop2At = HostClock.ToUs(at);
        }
        else
        {
            _stopAt = HostClock.ToUs(at);
        }

        _managed.Open(ManagedGcWindows.Reading.Now());
    }

    /// <summary>The finish, the round that opens the gates, is sent at <paramref name="at"/>.</summary>
    public void Finishing(long at) => _finishAt = HostClock.ToUs(at);

    /// <summary>The pause's last reply came in at <paramref name="at"/>.</summary>
    public void PauseEnds(long at)
    {
        _endAt = HostClock.ToUs(at);
        _managed.Close();
    }

    /// <summary>The parts so far.</summary>
    public GcCycleParts Parts() => new(Ms(Step.Sweep), Ms(Step.Stop), Ms(Step.Begin), Ms(Step.Cut), Ms(Step.Mark),
        Ms(Step.Terminate), Ms(Step.Finish), _rounds, _managed.Ms, _managed.Collections,
        new GcCycleTimes(HostClock.Id, _stopAt, _stop2At, _finishAt, _endAt));

    private double Ms(Step step) => Stopwatch.GetElapsedTime(0, _ticks[(int)step]).TotalMilliseconds;
}
