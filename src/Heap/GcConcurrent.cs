using System.Diagnostics;

namespace ClusterHeap.Heap;

/// <summary>How a node heap collects (<see cref="HeapOptions.GcMode"/>).</summary>
public enum GcMode
{
    /// <summary>Every cycle stops the world from its start to the start of its sweep.</summary>
    StopTheWorld,
    /// <summary>Mutators run while the heap marks; two short pauses at its start and end (GcConcurrent.cs).</summary>
    Concurrent,
}

/// <summary>
/// The concurrent mark (Go's gcStart → gcBgMarkWorker/gcAssist → gcMarkDone → gcMarkTermination), with
/// <see cref="HeapOptions.GcMode"/> = <see cref="GcMode.Concurrent"/>:
/// <code>
///   pause 1 (world stopped): finish the last sweep, flush the mcaches, shade every root set (a snapshot), barrier on,
///                            allocation born marked
///   mark (mutators run):     the mark worker thread (or assists) drains grey objects and the barrier's queue in
///                            slices under the mark lock; the write barrier (GcBarrier.cs) queues old and new words
///   pause 2 (world stopped): drain the barrier's queue and the grey objects to empty, barrier off, flush the mcaches
///                            (so every span is swept), checkmark if asked (GcCheckmark.cs), start the sweep
/// </code>
/// Why it is safe: everything reachable at pause 1 is reachable from a shaded root through edges that the barrier
/// shades when they are overwritten; everything made reachable later is either born marked or entered the heap or a
/// root set through a barriered write, whose new word is shaded. Nothing is swept before pause 2 emptied both queues.
/// <para>
/// Who does the mark work: with <see cref="HeapOptions.MarkWorker"/> on (default), a dedicated background thread per
/// heap (Go's dedicated mark worker — here a second core the mutator does not use); a mutator that reaches the heap goal
/// while marking assists by finishing the mark itself. Off: mutators do all of it, a slice at each refill and large
/// allocation while marking (Go's assists, on the mutator's own core). Either way pause 2 is started by a mutator at
/// its next refill or large allocation after the mark ran dry, or by <see cref="NodeHeap.Collect"/>: only a thread in a
/// mutator's place may stop the world, since mutators that use no scope are stopped only by being the one that stops it.
/// </para>
/// Concurrency model: phase changes happen with the world stopped; the marker, its grey stack and the barrier's spare
/// buffer are guarded by <see cref="_markLock"/> (taken after the world lock, never before it); mark bits are set
/// atomically by the marker and by allocation.
/// </summary>
public sealed unsafe partial class NodeHeap
{
    private const long MarkSliceObjects = 2048;      // objects one slice scans before it looks at the barrier's queue

    private readonly Lock _markLock = new();
    private volatile bool _localMarking;             // a local concurrent cycle is between its pauses
    private volatile bool _markWorkDone;             // the worker found nothing grey and nothing queued
    private bool _cycleForced;                       // the local concurrent cycle was asked for (Collect); world lock
    private long _cycleT0, _cycleT1, _cycleLiveBefore, _cycleLiveAtMark, _cycleRoots;   // written in pause 1
    private long _assistTicks, _workerTicks;         // Interlocked: mark time on mutators and on the worker, this cycle
    private Thread? _markWorker;
    private readonly AutoResetEvent _markWake = new(false);

    private bool ConcurrentMode => Options.GcMode == GcMode.Concurrent;

    /// <summary>Pause 1, the world stopped: the mark starts, roots shaded, barrier on. Returns the roots shaded.</summary>
    private long BeginConcurrentMarkStopped(Action<ulong>? foreignSink)
    {
        using (_markLock.EnterScope()) BeginMarkStopped();          // the marker resets: no slice may be running
        _marker!.Concurrent = true;
        _marker.ForeignSink = foreignSink;
        _cycleLiveAtMark = _mheap.HeapLive;
        Interlocked.Exchange(ref _assistTicks, 0);
        Interlocked.Exchange(ref _workerTicks, 0);
        long roots;
        using (_markLock.EnterScope()) roots = ShadeRootsStopped();
        _marking = true;
        SetBornMarked((DebugBreak & GcDebugBreak.SkipBornMarked) == 0);
        return roots;
    }

    private void SetBornMarked(bool on)
    {
        using (_cachesLock.EnterScope())
        {
            foreach (MCache c in _caches) c.BornMarked = on;
        }
    }

    /// <summary>
    /// One slice of mark work, mutators running: the barrier's queue, then up to <paramref name="objects"/> grey
    /// objects. True when nothing grey and nothing queued is left.
    /// </summary>
    private bool MarkSlice(long objects)
    {
        using (_markLock.EnterScope())
        {
            DrainBarrierLocked();
            return _marker!.Drain(objects) && !BarrierPending;
        }
    }

    /// <summary>Pause 2's drain: the barrier's queue and every grey object, until both are empty. World stopped.</summary>
    private void DrainAllStopped()
    {
        using (_markLock.EnterScope())
        {
            do
            {
                DrainBarrierLocked();
                _marker!.Drain();
            }
            while (BarrierPending);
        }
    }

    /// <summary>
    /// Pause 2, the world stopped and both queues empty: barrier off, the mcaches flushed (their spans become sweepable),
    /// checkmark if asked, then the sweep starts as after any mark.
    /// </summary>
    private GcCycle EndConcurrentMarkStopped(bool forced, long termStart, long roots)
    {
        _marking = false;
        SetBornMarked(false);
        foreach (MCache c in CachesSnapshot()) c.FlushForGc();
        _marker!.Concurrent = false;
        _marker.ForeignSink = null;
        if (Options.Checkmark) Checkmark();
        long bornMarked = Math.Max(0, _mheap.HeapLive - _cycleLiveAtMark);
        var concurrent = new ConcurrentMarkTimes(
            PauseTicks: (_cycleT1 - _cycleT0) + (Stopwatch.GetTimestamp() - termStart),
            AssistTicks: Interlocked.Read(ref _assistTicks), WorkerTicks: Interlocked.Read(ref _workerTicks),
            BornMarkedBytes: bornMarked);
        return EndMarkStopped(forced, _cycleT0, _cycleT1, termStart, _cycleLiveBefore, roots, concurrent);
    }

    /// <summary>Runs <paramref name="f"/> with the world stopped, from a mutator inside its scope or from any thread.</summary>
    private T StopTheWorld<T>(Func<T> f)
    {
        bool mutator = _world.IsReadLockHeld;
        if (mutator) _world.ExitReadLock();
        _world.EnterWriteLock();
        try
        {
            return f();
        }
        finally
        {
            _world.ExitWriteLock();
            AfterPause();
            if (mutator) _world.EnterReadLock();
        }
    }

    /// <summary>Starts a local concurrent cycle (pause 1) unless one runs or a session marks. True when this call started it.</summary>
    private bool StartConcurrentCycle(bool forced)
    {
        EnsureCollectorWarm(WarmKind.Concurrent);                  // GcWarmup.cs: nothing compiles inside the pause
        if (Options.MarkWorker) CreateMarkWorker();                // Go's gcBgMarkStartWorkers: before the world stops
        SweepBeforePause();
        bool started = StopTheWorld(() =>
        {
            if (_localMarking || _markSession != null || _disposed) return false;
            if (!forced && _mheap.HeapLive < Pacer.Trigger) return false;
            long jit0 = JitCount();
            _cycleT0 = Stopwatch.GetTimestamp();
            _cycleLiveBefore = _mheap.HeapLive;
            _cycleForced = forced;
            _cycleRoots = BeginConcurrentMarkStopped(foreignSink: null);
            _markWorkDone = false;
            _localMarking = true;
            _cycleT1 = Stopwatch.GetTimestamp();
            _cyclePause1Jit = JitCount() - jit0;
            return true;
        });
        if (started && Options.MarkWorker) _markWake.Set();      // woken once the world runs again
        return started;
    }

    /// <summary>
    /// Go's gcStart sweeps what the last cycle left before it stops the world, so that pause 1's finishing sweep finds
    /// (nearly) nothing: the same here, on the starting thread, under the world lock's shared side as the background
    /// sweeper holds it (a pause that starts meanwhile waits for the span being swept).
    /// </summary>
    private long SweepBeforePause()
    {
        if (_sweepDone) return 0;
        bool mutator = _world.IsReadLockHeld;
        if (!mutator) _world.EnterReadLock();
        try
        {
            long spans = 0;
            while (!_disposed && SweepOneSpan(out _)) spans++;
            return spans;
        }
        finally
        {
            if (!mutator) _world.ExitReadLock();
        }
    }

    /// <summary>Ends the local concurrent cycle (pause 2) if one is marking; null when none was.</summary>
    private GcCycle? TerminateConcurrentCycle()
    {
        if (_localMarking && BarrierPending) Assist(long.MaxValue);    // what the barrier queued, before the world stops
        return StopTheWorld(() =>
        {
            if (!_localMarking) return null;
            _pauseJitAtStart = JitCount();
            long t2 = Stopwatch.GetTimestamp();
            using (_markLock.EnterScope()) _localMarking = false;     // the worker's next slice sees it: none runs past here
            DrainAllStopped();
            return EndConcurrentMarkStopped(_cycleForced, t2, _cycleRoots);
        });
    }

    /// <summary>Mark work on a mutator's thread (an assist), timed as such; <paramref name="objects"/> per call, or all.</summary>
    private bool Assist(long objects)
    {
        long t0 = Stopwatch.GetTimestamp();
        bool done;
        if (objects == long.MaxValue)
        {
            while (!MarkSlice(MarkSliceObjects)) { }
            done = true;
        }
        else
        {
            done = MarkSlice(objects);
        }
        Interlocked.Add(ref _assistTicks, Stopwatch.GetTimestamp() - t0);
        return done;
    }

    /// <summary>
    /// shouldhelpgc in concurrent mode (a refill, a large allocation): start a cycle at the trigger; while marking,
    /// assist (a slice without a worker; the rest of the mark at the goal) and end the mark once it ran dry.
    /// </summary>
    private void HelpGcConcurrent()
    {
        if (_markSession != null) return;
        if (!_localMarking)
        {
            if (_mheap.HeapLive >= Pacer.Trigger) StartConcurrentCycle(forced: false);
            return;
        }
        bool done = _markWorkDone;
        if (!done && (!Options.MarkWorker || _mheap.HeapLive >= Pacer.Goal))
        {
            done = Assist(Options.MarkWorker ? long.MaxValue : MarkSliceObjects);
        }
        if (done) TerminateConcurrentCycle();
    }

    /// <summary>Collect in concurrent mode (Go's runtime.GC): finish the cycle that marks, then run a whole one, marking on this thread.</summary>
    private GcCycle CollectConcurrent(bool forced)
    {
        if (_localMarking)
        {
            Assist(long.MaxValue);
            TerminateConcurrentCycle();
        }
        while (true)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            if (_markSession != null) throw new InvalidOperationException("a coordinated collection is marking this heap; it runs the cycle");
            if (!StartConcurrentCycle(forced))
            {
                if (!_localMarking) continue;                      // a session began, or the heap was disposed: the checks above say which
                Assist(long.MaxValue);                             // another thread started one: finish it and go again
                TerminateConcurrentCycle();
                continue;
            }
            Assist(long.MaxValue);
            GcCycle? cycle = TerminateConcurrentCycle();
            if (cycle != null) return cycle;
        }
    }

    /// <summary>A concurrent local cycle that a session must not see: dropped with every mark (pause held by the caller).</summary>
    private void AbortLocalMarkStopped()
    {
        if (!_localMarking) return;
        using (_markLock.EnterScope()) _localMarking = false;
        DropConcurrentMarkStopped();
    }

    /// <summary>Barrier off, queues emptied, every mark dropped: nothing is swept on this mark's evidence. World stopped.</summary>
    private void DropConcurrentMarkStopped()
    {
        _marking = false;
        SetBornMarked(false);
        using (_markLock.EnterScope())
        {
            _barrierLock.Enter();
            _barrierCount = 0;
            _barrierLock.Exit();
            _marker!.ForeignSink = null;
            _marker.Concurrent = false;
            _marker.Reset();
        }
        foreach (MCentral c in _centrals) c.ClearMarks();
        _mheap.ClearLargeMarks();
    }

    /// <summary>The heap's mark worker thread, made once, by whichever cycle start comes first (outside any pause).</summary>
    private void CreateMarkWorker()
    {
        if (Volatile.Read(ref _markWorker) != null) return;
        var worker = new Thread(MarkWorkerLoop) { IsBackground = true, Name = "clusterheap-gc-mark-worker" };
        if (Interlocked.CompareExchange(ref _markWorker, worker, null) == null) worker.Start();
    }

    /// <summary>Go's dedicated mark worker: slices of mark work while a local cycle marks, then sleeps until the next.</summary>
    private void MarkWorkerLoop()
    {
        while (true)
        {
            _markWake.WaitOne();
            if (_disposed) return;
            while (_localMarking && !_disposed)
            {
                long t0 = Stopwatch.GetTimestamp();
                bool done;
                using (_markLock.EnterScope())
                {
                    if (!_localMarking || _disposed) break;
                    DrainBarrierLocked();
                    done = _marker!.Drain(MarkSliceObjects) && !BarrierPending;
                }
                Interlocked.Add(ref _workerTicks, Stopwatch.GetTimestamp() - t0);
                if (done)
                {
                    _markWorkDone = true;
                    break;
                }
            }
        }
    }

    /// <summary>
    /// Starts this heap's part in a coordinated concurrent cycle (GcMarkSession.cs): pause 1 — the last sweep finishes,
    /// the mcaches are flushed, the root sets are shaded (foreign root words wait in the session's outbox), the barrier
    /// turns on — and the mutators run again when it returns.
    /// </summary>
    public GcMarkSession BeginConcurrentMarkSession()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCollectorWarm(WarmKind.Sessions);
        return StopTheWorld(() =>
        {
            if (_markSession != null) throw new InvalidOperationException("a mark session is open on this heap already");
            AbortLocalMarkStopped();
            long jit0 = JitCount();
            _cycleT0 = Stopwatch.GetTimestamp();
            _cycleLiveBefore = _mheap.HeapLive;
            var session = new GcMarkSession(this, _cycleT0, 0, _cycleLiveBefore, concurrent: true);
            session.Roots = BeginConcurrentMarkStopped(session.Collect);
            session.SweptInPause = _sweptInPause;
            _markSession = session;
            _cycleT1 = Stopwatch.GetTimestamp();
            _cyclePause1Jit = JitCount() - jit0;
            return session;
        });
    }

    /// <summary>A concurrent session's step, mutators running: <paramref name="shade"/>, the barrier's queue, then grey objects.</summary>
    internal GcMarkStep RunConcurrentSessionStep(GcMarkSession session, Action shade, long maxObjects = long.MaxValue)
    {
        long t0 = Stopwatch.GetTimestamp();
        using (_markLock.EnterScope())
        {
            if (_markSession != session) throw new InvalidOperationException("this mark session is not the heap's open one");
            shade();
            DrainBarrierLocked();
            bool drained = _marker!.Drain(maxObjects) && !BarrierPending;
            Interlocked.Add(ref _workerTicks, Stopwatch.GetTimestamp() - t0);
            return new GcMarkStep(session.TakeOutbox(), drained, _marker.Counts);
        }
    }

    /// <summary>
    /// A concurrent session's counts so far: read under the mark lock, scanning nothing and leaving the outbox to the
    /// next step (a read that drained would mark inside a pause and drop the words it found for other nodes).
    /// </summary>
    internal MarkCounts ConcurrentSessionCounts(GcMarkSession session)
    {
        using (_markLock.EnterScope())
        {
            if (_markSession != session) throw new InvalidOperationException("this mark session is not the heap's open one");
            return _marker!.Counts;
        }
    }

    /// <summary>Mark termination's step: the world stopped for it, both queues drained to empty; what is outgoing.</summary>
    internal GcMarkTermination RunTerminationStep(GcMarkSession session)
    {
        return StopTheWorld(() =>
        {
            if (_markSession != session) throw new InvalidOperationException("this mark session is not the heap's open one");
            DrainAllStopped();
            using (_markLock.EnterScope())
            {
                ulong[] outgoing = session.TakeOutbox();
                return new GcMarkTermination(outgoing, outgoing.Length == 0 && !_marker!.HasGrey, _marker!.Counts, BarrierShaded);
            }
        });
    }

    /// <summary>Pause 2 of a coordinated concurrent cycle; refuses while the final drain finds words for other nodes.</summary>
    internal GcCycle FinishConcurrentSession(GcMarkSession session)
    {
        return StopTheWorld(() =>
        {
            if (_markSession != session) throw new InvalidOperationException("this mark session is not the heap's open one");
            _pauseJitAtStart = JitCount();
            long t2 = Stopwatch.GetTimestamp();
            DrainAllStopped();
            using (_markLock.EnterScope())
            {
                if (session.PendingOutgoing > 0)
                {
                    throw new InvalidOperationException(
                        $"mark termination is not reached: this heap's last drain found {session.PendingOutgoing} word(s) for other nodes " +
                        "(a mutator ran after MarkTermination); route them (MarkTermination returns them) and terminate again");
                }
            }
            _markSession = null;
            return EndConcurrentMarkStopped(forced: true, t2, session.Roots);
        });
    }

    /// <summary>Stops the mark worker (Dispose, before the heap's memory goes).</summary>
    private void StopMarkWorker()
    {
        Thread? worker = Volatile.Read(ref _markWorker);
        if (worker == null) return;
        _markWake.Set();
        if ((worker.ThreadState & System.Threading.ThreadState.Unstarted) == 0) worker.Join();   // a cycle start racing Dispose may not have started it
    }
}

/// <summary>A concurrent cycle's figures beside the mark's: its two pauses, mark time on mutators and on the worker, bytes born marked.</summary>
internal sealed record ConcurrentMarkTimes(long PauseTicks, long AssistTicks, long WorkerTicks, long BornMarkedBytes);
