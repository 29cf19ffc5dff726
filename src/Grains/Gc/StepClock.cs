using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// Where one node's part of a cluster cycle spends its time (GcNodeParts): Stopwatch ticks per step, kept by
/// GcNodeGrain's steps. The sweep before the stop is reported with the cycle it preceded; everything else starts over
/// at the cycle's first stop. Written by the gc node grain's turns only (its steps interleave, but each step's work
/// between awaits is one synchronous run on the grain's scheduler).
/// </summary>
internal struct StepClock
{
    private long _cycle, _sweepCycle;        // the cycle the steps below belong to; the one the sweep ran before
    private long _sweep, _sweptBefore;       // ticks and spans of the sweep before the stop
    private long _gate, _begin, _terminate, _finish, _paused;   // ticks
    private long _sweptInPause;              // spans pause 1's sweep termination swept
    private long _closedAt;                  // when the gate last closed; 0 while it is open

    /// <summary>The sweep before the stop of <paramref name="cycle"/> took <paramref name="ticks"/> for <paramref name="spans"/>.</summary>
    public void SweptBefore(long cycle, long spans, long ticks)
    {
        _sweepCycle = cycle;
        _sweptBefore = spans;
        _sweep = ticks;
    }

    /// <summary>A stop of <paramref name="cycle"/>: the first one starts the clock over.</summary>
    public void Begin(long cycle)
    {
        if (cycle == _cycle) return;
        _cycle = cycle;
        _gate = _begin = _terminate = _finish = _paused = _sweptInPause = _closedAt = 0;
    }

    /// <summary>The gate closed; it began closing at <paramref name="t0"/>.</summary>
    public void Closed(long t0)
    {
        _closedAt = Stopwatch.GetTimestamp();
        _gate += _closedAt - t0;
    }

    /// <summary>The gate opened (resume or finish): the pause since it closed counts.</summary>
    public void Opened()
    {
        if (_closedAt == 0) return;
        _paused += Stopwatch.GetTimestamp() - _closedAt;
        _closedAt = 0;
    }

    public void Begun(long t0, long sweptInPause)
    {
        _begin += Stopwatch.GetTimestamp() - t0;
        _sweptInPause = sweptInPause;
    }

    public void Terminated(long t0) => _terminate += Stopwatch.GetTimestamp() - t0;

    public void Finished(long t0) => _finish += Stopwatch.GetTimestamp() - t0;

    public readonly GcNodeParts Parts() => new(
        _sweepCycle == _cycle ? Ms(_sweep) : 0, _sweepCycle == _cycle ? _sweptBefore : 0,
        Ms(_gate), Ms(_begin), _sweptInPause, Ms(_terminate), Ms(_finish), Ms(_paused));

    private static double Ms(long ticks) => Stopwatch.GetElapsedTime(0, ticks).TotalMilliseconds;
}
