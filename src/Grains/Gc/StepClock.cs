using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// Where one node's part of a cluster cycle spends its time (GcNodeParts): Stopwatch ticks per step, kept by
/// GcNodeGrain's steps. The sweep before the stop is reported with the cycle it preceded; everything else starts over
/// at the cycle's first stop. Beside the steps, what else could make a pause slow, taken once at each stop's arrival
/// and at each gate opening (a pause window) and never on a mutator's path: the .NET collector's pause time and
/// collections in this process, the thread pool's queue at the stop, the client calls the gate drained and held; and
/// when the steps happened on the host's clock (GcNodeTimes). Written by the gc node grain's turns only (its steps
/// interleave, but each step's work between awaits is one synchronous run on the grain's scheduler).
/// </summary>
internal struct StepClock
{
    private long _cycle, _sweepCycle;        // the cycle the steps below belong to; the one the sweep ran before
    private long _sweep, _sweptBefore;       // ticks and spans of the sweep before the stop
    private long _gate, _begin, _terminate, _finish, _paused;   // ticks
    private long _cut;                       // ticks: concurrent, the first stop's gate closing to its opening (this node's cut)
    private long _closingAt;                 // when the first stop began closing the gate; 0 once its gate opened
    private long _sweptInPause;              // spans pause 1's sweep termination swept
    private long _closedAt;                  // when the gate last closed; 0 while it is open
    private long _windowHeld;                // at the open window's stop: the gate's held count
    private bool _inWindow;                  // a stop arrived and its gate has not opened yet
    private ManagedGcWindows.Reading? _replied;   // at the last reply before a stop (sweep, mark step): a window starts there
    private ManagedGcWindows _managed;       // the .NET collector in the closed windows
    private long _queued, _drained, _held;   // thread-pool queue at a stop (max); calls drained, held
    private long _stopAt, _resumedAt, _stop2At, _finishAt, _openedAt;   // host clock, µs

    /// <summary>The sweep before the stop of <paramref name="cycle"/> took <paramref name="ticks"/> for <paramref name="spans"/>.</summary>
    public void SweptBefore(long cycle, long spans, long ticks)
    {
        _sweepCycle = cycle;
        _sweptBefore = spans;
        _sweep = ticks;
    }

    /// <summary>A stop of <paramref name="cycle"/> arrived: the first one starts the clock over; a pause window opens.</summary>
    public void Stopping(long cycle, long held)
    {
        long now = HostClock.NowUs();
        if (cycle != _cycle)
        {
            this = new StepClock
            {
                _sweepCycle = _sweepCycle,
                _sweep = _sweep,
                _sweptBefore = _sweptBefore,
                _cycle = cycle,
                _stopAt = now,
                _replied = _replied,
            };
        }
        else
        {
            _stop2At = now;
        }

        _queued = Math.Max(_queued, ThreadPool.PendingWorkItemCount);
        // The window opens at the reply before this stop when there was one, so the stop's way in is in it too.
        _managed.Open(_replied ?? ManagedGcWindows.Reading.Now());
        _replied = null;
        _windowHeld = held;
        _inWindow = true;
    }

    /// <summary>The gate closed after <paramref name="drained"/> calls in flight ended; it began closing at <paramref name="t0"/>.</summary>
    public void Closed(long t0, int drained)
    {
        if (_stop2At == 0 && _resumedAt == 0)
        {
            _closingAt = t0;
        }

        _closedAt = Stopwatch.GetTimestamp();
        _gate += _closedAt - t0;
        _drained += drained;
    }

    /// <summary>The gate opened (resume, or <paramref name="finish"/>): the pause since it closed counts, and the window ends.</summary>
    public void Opened(bool finish, long held)
    {
        long now = Stopwatch.GetTimestamp();
        if (finish)
        {
            _openedAt = HostClock.ToUs(now);
        }
        else
        {
            _resumedAt = HostClock.ToUs(now);
            if (_closingAt != 0)
            {
                _cut = now - _closingAt;
                _closingAt = 0;
            }
        }

        if (_inWindow)
        {
            _managed.Close();
            _held += held - _windowHeld;
            _inWindow = false;
        }

        if (_closedAt == 0) return;
        _paused += now - _closedAt;
        _closedAt = 0;
    }

    /// <summary>A step that a stop may follow (the sweep before the stop, a mark step) replies now.</summary>
    public void Replied()
    {
        _replied = ManagedGcWindows.Reading.Now();
    }

    /// <summary>The finish arrived.</summary>
    public void Finishing() => _finishAt = HostClock.NowUs();

    public void Begun(long t0, long sweptInPause)
    {
        _begin += Stopwatch.GetTimestamp() - t0;
        _sweptInPause = sweptInPause;
    }

    public void Terminated(long t0) => _terminate += Stopwatch.GetTimestamp() - t0;

    public void Finished(long t0) => _finish += Stopwatch.GetTimestamp() - t0;

    public readonly GcNodeParts Parts() => new(
        _sweepCycle == _cycle ? Ms(_sweep) : 0, _sweepCycle == _cycle ? _sweptBefore : 0,
        Ms(_gate), Ms(_begin), _sweptInPause, Ms(_terminate), Ms(_finish), Ms(_paused),
        _managed.Ms, _managed.Collections, _queued, _drained, _held,
        new GcNodeTimes(HostClock.Id, _stopAt, _resumedAt, _stop2At, _finishAt, _openedAt), Ms(_cut));

    private static double Ms(long ticks) => Stopwatch.GetElapsedTime(0, ticks).TotalMilliseconds;
}
