using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// One collection: its figures and its gctrace line (<see cref="Trace"/>). <c>PauseJitMethods</c>: methods the runtime
/// compiled on the pausing thread inside this cycle's pauses — a path's first run compiles it, and GcWarmup.cs runs the
/// pause paths before any heap's first pause, so this stays 0 (a stop-the-world session counts its Finish only).
/// </summary>
public sealed record GcCycle(
    long Number, bool Forced, TimeSpan SinceStart, double GcCpuPercent,
    TimeSpan SweepTerm, TimeSpan Mark, TimeSpan MarkTerm,
    long HeapLiveBefore, long HeapLiveAfter, long Marked, long Goal, MarkCounts Counts, long Roots,
    bool Concurrent = false, TimeSpan AssistCpu = default, TimeSpan WorkerCpu = default, long PauseJitMethods = 0)
{
    /// <summary>
    /// The world stopped: the whole cycle up to its sweep (stop the world); the two pauses, SweepTerm and MarkTerm
    /// (concurrent: <see cref="Mark"/> is the wall time mutators ran while marking went on).
    /// </summary>
    public TimeSpan Pause => Concurrent ? SweepTerm + MarkTerm : SweepTerm + Mark + MarkTerm;

    /// <summary>
    /// Go's <c>GODEBUG=gctrace=1</c> line. Stop the world: the three clock figures are the pause's parts (finishing the
    /// last sweep and flushing the mcaches; marking; starting the sweep), all on one thread, and the cpu figures repeat
    /// them with the mark as background work. Concurrent: pause 1, the mark's wall time, pause 2; cpu: pause 1 +
    /// assist/worker/0 (idle) + pause 2, as Go prints it. One node heap counts as 1 P.
    /// </summary>
    public string Trace
    {
        get
        {
            CultureInfo inv = CultureInfo.InvariantCulture;
            static string Ms(TimeSpan t) => t.TotalMilliseconds.ToString(t.TotalMilliseconds < 10 ? "0.###" : "0.#", CultureInfo.InvariantCulture);
            static long Mb(long b) => b >> 20;
            return string.Create(inv,
                $"gc {Number} @{SinceStart.TotalSeconds:0.000}s {GcCpuPercent:0}%: {Ms(SweepTerm)}+{Ms(Mark)}+{Ms(MarkTerm)} ms clock, " +
                $"{Ms(SweepTerm)}+{(Concurrent ? Ms(AssistCpu) : "0")}/{Ms(Concurrent ? WorkerCpu : Mark)}/0+{Ms(MarkTerm)} ms cpu, {Mb(HeapLiveBefore)}->{Mb(HeapLiveAfter)}->{Mb(Marked)} MB, " +
                $"{(Goal == long.MaxValue ? "-" : Mb(Goal).ToString(inv))} MB goal, 1 P{(Forced ? " (forced)" : "")}");
        }
    }
}

/// <summary>
/// The collector: Go's mark and sweep over this heap (the overview of the heap is NodeHeap.cs).
/// <code>
///   roots (RootSets: shadow stacks, client handles)
///     │ shade every word (GcMarker: checked against the spans array and the bitmap, never trusted)
///     ▼
///   mark: grey objects scanned word by word per the bitmap's kind bits → MarkBits per span
///     │ sweepgen += 2: every span unswept
///     ▼
///   sweep (GcSweep.cs): unmarked live objects freed, span by span — by refills, before growth, in the background
/// </code>
/// With <see cref="HeapOptions.GcMode"/> = <see cref="GcMode.Concurrent"/> the mark runs beside the mutators between
/// two short pauses, with a write barrier and born-marked allocation (GcConcurrent.cs, GcBarrier.cs, checkmark in
/// GcCheckmark.cs); what follows describes the stop-the-world mode, the default, whose pieces the concurrent cycle reuses.
/// A cycle stops the world: it takes the world lock's exclusive side, so every mutator is between its scopes (or is
/// the one that started the cycle, from inside Malloc: it steps out of its shared side for the cycle). The cycle
/// finishes the last sweep, flushes every mcache (free stacks, tiny block, cached spans: Go's mark termination does the
/// same), marks from every root set, starts the sweep and sets the next goal (GcPacer.cs). With
/// <see cref="HeapOptions.Collector"/> on, the pacer starts cycles at Go's shouldhelpgc points (an mcache refill, a large
/// allocation), and an allocation that would fail at the growth limit first runs a cycle and fails only if that did not
/// help; off (the default: a heap of explicit frees only), cycles run only when <see cref="Collect"/> is called.
/// Explicit free stays valid throughout. Before a process's first pause the collector's paths run once on scratch
/// heaps (GcWarmup.cs), so that no pause compiles code.
/// <para>
/// Concurrency model: cycles are serialized by the world lock; the mark runs on the collecting thread. Roots and
/// mcaches are read and flushed only while their owners are stopped. Statistics are guarded by the world lock.
/// </para>
/// </summary>
public sealed unsafe partial class NodeHeap
{
    private const int PauseHistory = 256;          // Go's MemStats.PauseNs ring

    private readonly List<RootSet> _roots = [];     // guarded by _cachesLock
    private GcMarker? _marker;                      // created by the first cycle; world lock
    private readonly long _startTicks = Stopwatch.GetTimestamp();

    // Cycle statistics, written by cycles (world lock exclusive), read by ReadMemStats (the same).
    private long _numGc, _numForcedGc, _pauseTotalTicks, _gcCycleTicks, _lastGcUnixNs;
    private readonly long[] _pauseNs = new long[PauseHistory];
    private readonly long[] _pauseEndUnixNs = new long[PauseHistory];
    private GcCycle? _lastCycle;
    private long _pauseJitAtStart, _cyclePause1Jit;  // JitCount() at this pause's start; pause 1's compilations (concurrent)

    /// <summary>The pacer: GOGC, the memory limit and the heap goal.</summary>
    public GcPacer Pacer { get; }

    /// <summary>The generation this node's client pointers carry in their top 16 bits (the marker accepts it and raw addresses).</summary>
    public ushort PointerGeneration { get; set; }

    /// <summary>The last cycle, or null before the first.</summary>
    public GcCycle? LastCycle => Volatile.Read(ref _lastCycle);

    /// <summary>A new root set for one mutator; give it back with <see cref="ReleaseRoots"/>.</summary>
    public RootSet CreateRoots()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var roots = new RootSet(this);
        using (_cachesLock.EnterScope()) _roots.Add(roots);
        return roots;
    }

    /// <summary>Drops a root set: what only it held becomes garbage for the next cycle.</summary>
    public void ReleaseRoots(RootSet roots)
    {
        using (_cachesLock.EnterScope()) _roots.Remove(roots);
    }

    /// <summary>Runs a whole cycle now (Go's runtime.GC): stops the world, marks, starts the sweep.</summary>
    public GcCycle Collect() => ConcurrentMode ? CollectConcurrent(forced: true) : CollectFromAnyThread(forced: true)!;

    /// <summary>
    /// Go's shouldhelpgc check, at a refill and a large allocation: starts a cycle when heap_live has reached the goal.
    /// No heap lock may be held.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    internal void HelpGc()
    {
        if (!_collector) return;
        if (ConcurrentMode) HelpGcConcurrent();
        else if (_mheap.HeapLive >= Pacer.Goal) CollectFromAnyThread(forced: false);
    }

    /// <summary>An allocation is about to fail at a limit: with the collector on, run a cycle first. True when one ran.</summary>
    internal bool CollectBeforeOutOfMemory()
    {
        if (!_collector || _markSession != null) return false;
        if (ConcurrentMode) CollectConcurrent(forced: true);
        else CollectFromAnyThread(forced: true);
        FinishSweep();
        return true;
    }

    private GcCycle? CollectFromAnyThread(bool forced)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCollectorWarm(WarmKind.StopTheWorld);     // GcWarmup.cs: nothing compiles inside the pause
        if (_markSession != null)
        {
            // A coordinated cycle is marking this heap (GcMarkSession.cs): it decides; a local cycle would wipe its marks.
            if (forced) throw new InvalidOperationException("a coordinated collection is marking this heap; it runs the cycle");
            return null;
        }
        bool mutator = _world.IsReadLockHeld;        // started from inside Malloc, within the owner's scope
        if (mutator) _world.ExitReadLock();
        _world.EnterWriteLock();
        try
        {
            // Another thread's cycle may have run while this one waited for the world, or a session begun.
            if (_markSession != null || (!forced && _mheap.HeapLive < Pacer.Goal)) return null;
            return CollectStopped(forced);
        }
        finally
        {
            _world.ExitWriteLock();
            AfterPause();
            if (mutator) _world.EnterReadLock();
        }
    }

    private GcCycle CollectStopped(bool forced)
    {
        _pauseJitAtStart = JitCount();
        _cyclePause1Jit = 0;
        long t0 = Stopwatch.GetTimestamp();
        long liveBefore = _mheap.HeapLive;
        BeginMarkStopped();
        long t1 = Stopwatch.GetTimestamp();
        long roots = ShadeRootsStopped();
        _marker!.Drain();
        long t2 = Stopwatch.GetTimestamp();
        return EndMarkStopped(forced, t0, t1, t2, liveBefore, roots);
    }

    /// <summary>
    /// Sweep termination, the world stopped: the last cycle's sweep ends, every mcache gives back what it holds, and the
    /// marker starts from nothing (every span swept, so no mark bit is set).
    /// </summary>
    private void BeginMarkStopped()
    {
        _sweptInPause = FinishSweepCounted();
        foreach (MCache c in CachesSnapshot()) c.FlushForGc();
        _marker ??= new GcMarker(this, _mheap);
        _marker.Reset();
        _marker.Generation = PointerGeneration;
    }

    /// <summary>Shades every word of every root set; returns how many were not 0.</summary>
    private long ShadeRootsStopped()
    {
        long roots = 0;
        RootSet[] sets;
        using (_cachesLock.EnterScope()) sets = [.. _roots];
        foreach (RootSet r in sets)
        {
            foreach (ulong w in r.Words)
            {
                if (w == 0) continue;
                roots++;
                _marker!.Shade(w);
            }
        }
        return roots;
    }

    /// <summary>
    /// Mark termination, the world stopped: every span becomes unswept, heap_live is what the mark found, the pacer sets
    /// the next goal, the cycle is counted and traced, and the background sweeper starts.
    /// </summary>
    private GcCycle EndMarkStopped(bool forced, long t0, long t1, long t2, long liveBefore, long roots, ConcurrentMarkTimes? concurrent = null)
    {
        MarkCounts counts = _marker!.Counts;
        long marked = counts.Bytes + (concurrent?.BornMarkedBytes ?? 0);
        long liveAfter = _mheap.HeapLive;
        uint sweepGen = _mheap.SweepGen + 2;
        _mheap.SweepGen = sweepGen;
        foreach (MCentral c in _centrals) c.BeginSweep(sweepGen);
        _mheap.BeginLargeSweep();
        _sweepCursor = 0;
        _sweepDone = false;
        _mheap.ResetHeapLive(marked);
        Pacer.EndCycle(marked);
        long t3 = Stopwatch.GetTimestamp();
        long pauseJit = _cyclePause1Jit + JitCount() - _pauseJitAtStart;

        // A session's: from its start, the world stopped by its coordinator. Concurrent: the two pauses only.
        long pauseTicks = concurrent == null ? t3 - t0 : concurrent.PauseTicks + (t3 - t2);
        long unixNs = (DateTime.UtcNow.Ticks - DateTime.UnixEpoch.Ticks) * 100;
        int slot = (int)(_numGc % PauseHistory);
        _pauseNs[slot] = TicksToNs(pauseTicks);
        _pauseEndUnixNs[slot] = unixNs;
        _numGc++;
        if (forced) _numForcedGc++;
        _pauseTotalTicks += pauseTicks;
        _gcCycleTicks += pauseTicks + (concurrent == null ? 0 : concurrent.AssistTicks + concurrent.WorkerTicks);
        _lastGcUnixNs = unixNs;
        var cycle = new GcCycle(
            _numGc, forced, Stopwatch.GetElapsedTime(_startTicks), 100 * GcCpuFraction(),
            Stopwatch.GetElapsedTime(t0, t1), Stopwatch.GetElapsedTime(t1, t2), Stopwatch.GetElapsedTime(t2, t3),
            liveBefore, liveAfter, marked, Pacer.Goal, counts, roots, concurrent != null,
            Stopwatch.GetElapsedTime(0, concurrent?.AssistTicks ?? 0), Stopwatch.GetElapsedTime(0, concurrent?.WorkerTicks ?? 0), pauseJit);
        Volatile.Write(ref _lastCycle, cycle);
        Options.OnGcCycle?.Invoke(cycle);
        _sweepToQueue = true;                           // queued once the world runs again: AfterPause
        return cycle;
    }

    private bool _sweepToQueue;                         // a mark ended and its sweeper is not queued yet; set under the world lock, cleared by AfterPause
    // True from a session's Finish(sweepInBackground: false) until StartBackgroundSweep (the coordinator's one-way call
    // once every node finished, or the node's abort). Meanwhile AfterPause queues no sweeper, and the spans are swept as
    // ever by refills, reclaims and the next cycle's sweep termination; it holds back nothing else.
    internal volatile bool HoldBackgroundSweep;

    /// <summary>
    /// After a pause that may have ended a mark, the world lock released: queue the background sweeper then, not inside
    /// the pause (waking a pool thread costs tens of microseconds on a busy machine) — unless a session's finish held it.
    /// </summary>
    private void AfterPause()
    {
        if (!_sweepToQueue || HoldBackgroundSweep) return;
        _sweepToQueue = false;
        QueueBackgroundSweep();
    }

    /// <summary>
    /// Queues the background sweeper that a session's <see cref="GcMarkSession.Finish"/> held back (if it is still
    /// needed: nothing when no mark ended since, or the sweeper is off).
    /// </summary>
    public void StartBackgroundSweep()
    {
        HoldBackgroundSweep = false;
        AfterPause();
    }

    private GcMarkSession? _markSession;            // the coordinated cycle marking this heap; world lock
    private long _sweptInPause;                     // spans the last pause's sweep termination swept; world lock

    /// <summary>
    /// Starts this heap's part in a coordinated cycle (GcMarkSession.cs): the last sweep finishes and the mcaches are
    /// flushed. The caller has stopped this heap's mutators and keeps them stopped until the session ends.
    /// </summary>
    public GcMarkSession BeginMarkSession()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCollectorWarm(WarmKind.Sessions);
        _world.EnterWriteLock();
        try
        {
            if (_markSession != null) throw new InvalidOperationException("a mark session is open on this heap already");
            AbortLocalMarkStopped();                     // a local concurrent mark knows nothing of other nodes' pointers
            long t0 = Stopwatch.GetTimestamp();
            long liveBefore = _mheap.HeapLive;
            BeginMarkStopped();
            var session = new GcMarkSession(this, t0, Stopwatch.GetTimestamp(), liveBefore, concurrent: false) { SweptInPause = _sweptInPause };
            _marker!.ForeignSink = session.Collect;
            _markSession = session;
            return session;
        }
        finally
        {
            _world.ExitWriteLock();
        }
    }

    internal MarkCounts RunSessionStep(GcMarkSession session, Action shade)
    {
        _world.EnterWriteLock();
        try
        {
            if (_markSession != session) throw new InvalidOperationException("this mark session is not the heap's open one");
            shade();
            _marker!.Drain();
            return _marker.Counts;
        }
        finally
        {
            _world.ExitWriteLock();
        }
    }

    internal long ShadeRootsForSession() => ShadeRootsStopped();

    internal void ShadeForSession(ulong[] words)
    {
        foreach (ulong w in words) _marker!.Shade(w);
    }

    internal GcCycle FinishSession(GcMarkSession session, long t0, long t1, long t2, long liveBefore, long roots)
    {
        _world.EnterWriteLock();
        try
        {
            if (_markSession != session) throw new InvalidOperationException("this mark session is not the heap's open one");
            _pauseJitAtStart = JitCount();
            _cyclePause1Jit = 0;
            _marker!.ForeignSink = null;
            GcCycle cycle = EndMarkStopped(forced: true, t0, t1, t2, liveBefore, roots);
            _markSession = null;
            return cycle;
        }
        finally
        {
            _world.ExitWriteLock();
            AfterPause();
        }
    }

    internal void AbortSession(GcMarkSession session)
    {
        _world.EnterWriteLock();
        try
        {
            if (_markSession != session) return;
            if (session.IsConcurrent)
            {
                DropConcurrentMarkStopped();
                _markSession = null;
                return;
            }
            _marker!.ForeignSink = null;
            _marker.Reset();
            foreach (MCentral c in _centrals) c.ClearMarks();
            _mheap.ClearLargeMarks();
            _markSession = null;
        }
        finally
        {
            _world.ExitWriteLock();
        }
    }

    /// <summary>Go's GCCPUFraction: collector time (pauses and background sweeping) over wall time × processors.</summary>
    private double GcCpuFraction()
    {
        long elapsed = Stopwatch.GetTimestamp() - _startTicks;
        if (elapsed <= 0) return 0;
        return (double)(_gcCycleTicks + Volatile.Read(ref _bgSweepTicks)) / ((double)elapsed * Environment.ProcessorCount);
    }

    /// <summary>Methods the runtime has compiled on this thread (a pause's figure is the difference across it).</summary>
    private static long JitCount() => System.Runtime.JitInfo.GetCompiledMethodCount(currentThread: true);

    private static long TicksToNs(long ticks) => (long)(ticks * (1e9 / Stopwatch.Frequency));

    /// <summary>The collector's MemStats fields (world stopped).</summary>
    private GcStats ReadGcStatsStopped()
    {
        int n = (int)Math.Min(_numGc, PauseHistory);
        long[] recent = new long[n];
        for (int i = 0; i < n; i++) recent[i] = _pauseNs[(int)((_numGc - n + i) % PauseHistory)];
        long gcFrees = _mheap.LargeGcFreesLocked();
        foreach (MCentral c in _centrals)
        {
            using (c.Enter()) gcFrees += c.GcFrees;
        }
        return new GcStats(_numGc, _numForcedGc, TicksToNs(_pauseTotalTicks), recent, Pacer.Goal, _lastGcUnixNs,
            GcCpuFraction(), Pacer.Marked, _mheap.HeapLive, gcFrees, SweepPending);
    }
}

/// <summary>The collector's figures in <see cref="MemStats"/>.</summary>
internal sealed record GcStats(
    long NumGC, long NumForcedGC, long PauseTotalNs, IReadOnlyList<long> RecentPausesNs, long NextGC, long LastGC,
    double GCCPUFraction, long HeapMarked, long HeapLive, long GcFrees, bool SweepPending)
{
}
