using System.Diagnostics;

namespace ClusterHeap.Heap;

/// <summary>
/// The sweep (Go's mgcsweep.go), after a mark. The end of the mark adds 2 to the heap's sweepgen, so every in-use span
/// is 2 behind — unswept — and keeps the mark's verdict in its MarkBits; small spans wait on their mcentral's unswept
/// list (MCentral.Sweep.cs), large ones on mheap's (MHeap.Sweep.cs). Sweeping a span frees every live object the mark
/// did not reach (claiming it in the bitmap, as an explicit free does, so a racing free and the sweep never both
/// free it), clears the marks and makes the span swept. Who sweeps:
/// <list type="bullet">
/// <item>a refill that finds no swept partial span of its class sweeps that class's spans first (Go's mcentral.cacheSpan),
/// so every span an mcache or a lease holds is swept;</item>
/// <item>before the heap grows for a fresh or a large span, spans of every class are swept until enough pages came back
/// (<see cref="Reclaim"/>, Go's mheap.reclaim);</item>
/// <item>the background sweeper (Go's bgsweep), a thread-pool work item queued at the end of each cycle, sweeps the
/// rest one span at a time, holding the world lock's shared side per batch so that a collection can stop it;</item>
/// <item>the next collection finishes whatever is left before it marks (Go's finishsweep_m).</item>
/// </list>
/// Explicit frees keep working on unswept spans: they take the same locks, and an owner's free of an object in an
/// unswept span goes to mcentral instead of the owner's free stack (MCache.TryFree), so no slot of an unswept span is
/// ever handed out again before its sweep — the sweep would take a new object for the old one's garbage.
/// </summary>
public sealed unsafe partial class NodeHeap
{
    private volatile bool _sweepDone = true;     // false from a mark's end until a pass finds nothing to sweep
    private int _bgSweepRunning;                 // 1 while a background sweep work item is queued or running
    private long _bgSweepTicks;                  // Stopwatch ticks the background sweeper spent sweeping
    private int _sweepCursor;                    // span classes below it have nothing unswept (reset by each cycle)

    /// <summary>True when spans wait to be swept.</summary>
    public bool SweepPending => !_sweepDone;

    /// <summary>True while a background sweep work item is queued or running (tests).</summary>
    internal bool BackgroundSweepQueued => Volatile.Read(ref _bgSweepRunning) != 0;

    /// <summary>Sweeps one span (large ones first); false when none waits.</summary>
    private bool SweepOneSpan(out long pages)
    {
        pages = _mheap.SweepLargeOne(_poisonOnFree);
        if (pages >= 0) return true;
        // Spans become unswept only at a cycle's end (world stopped), so a class found empty stays empty: the cursor
        // only moves past empty classes, and sweepers racing on it at worst look at a class twice.
        for (int spc = Volatile.Read(ref _sweepCursor); spc < _centrals.Length; spc++)
        {
            MCentral c = _centrals[spc];
            if (c.HasUnswept)
            {
                pages = c.SweepOne(_poisonOnFree);
                if (pages >= 0) return true;
            }
            Volatile.Write(ref _sweepCursor, spc + 1);
        }
        pages = 0;
        return false;
    }

    /// <summary>Sweeps everything that waits (the next collection, before it marks; tests).</summary>
    public void FinishSweep() => FinishSweepCounted();

    /// <summary><see cref="FinishSweep"/>; returns the spans it swept (a pause's sweep termination reports them).</summary>
    private long FinishSweepCounted()
    {
        // Every class from the first, whatever the cursor says: this is what makes the next cycle's start exact.
        long spans = 0;
        while (_mheap.SweepLargeOne(_poisonOnFree) >= 0) spans++;
        foreach (MCentral c in _centrals)
        {
            while (c.SweepOne(_poisonOnFree) >= 0) spans++;
        }
        _sweepDone = true;
        return spans;
    }

    /// <summary>
    /// Go's gcStart: before a cycle stops the world, the starting thread sweeps what the last cycle left (the
    /// background sweeper's remainder), with the mutators running, so that the pause's sweep termination finds nothing
    /// — unless a cycle ended in between. A coordinator calls it on every node before it stops any
    /// (GcNodeGrain.SweepAsync). Takes the world lock's shared side as the background sweeper does; returns the spans
    /// it swept.
    /// </summary>
    public long SweepBeforeStop()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        EnsureCollectorWarm(WarmKind.Sessions);      // GcWarmup.cs: before a coordinator stops this node
        return SweepBeforePause();
    }

    /// <summary>
    /// Go's mheap.reclaim: before the heap grows by <paramref name="npages"/> pages, sweeps until that many pages went
    /// back to mheap or nothing waits. True when it swept anything. Called with no heap lock held.
    /// </summary>
    private bool Reclaim(nuint npages)
    {
        if (_sweepDone) return false;
        bool any = false;
        long got = 0;
        while (got < (long)npages && SweepOneSpan(out long pages))
        {
            any = true;
            got += pages;
        }
        if (!any) _sweepDone = true;
        return any;
    }

    /// <summary>A large object's span: free runs already mapped, then a reclaim, then growth (MCache.MallocLarge).</summary>
    internal MSpan* AllocLargeSpan(nuint npages, bool noscan, out OutOfMemoryReason reason)
    {
        byte spc = (byte)(noscan ? 1 : 0);
        MSpan* s = _mheap.AllocSpan(npages, spc, grow: false, out reason);
        while (s == null && Reclaim(npages)) s = _mheap.AllocSpan(npages, spc, grow: false, out reason);
        return s != null ? s : _mheap.AllocSpan(npages, spc, grow: true, out reason);
    }

    /// <summary>Queues the background sweeper unless one is queued or running already.</summary>
    private void QueueBackgroundSweep()
    {
        if (!Options.BackgroundSweeper) return;
        if (Interlocked.Exchange(ref _bgSweepRunning, 1) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static heap => heap.BackgroundSweep(), this, preferLocal: false);
    }

    /// <summary>
    /// Go's bgsweep: batches of spans, each under the world lock's shared side, until nothing waits. It stands down
    /// while still holding that lock, so a collection that ends after it sees it gone and queues a new one.
    /// </summary>
    private void BackgroundSweep()
    {
        const int Batch = 32;
        while (true)
        {
            _world.EnterReadLock();
            try
            {
                if (_disposed)
                {
                    Volatile.Write(ref _bgSweepRunning, 0);
                    return;
                }
                long t0 = Stopwatch.GetTimestamp();
                int n = 0;
                while (n < Batch && SweepOneSpan(out _)) n++;
                Interlocked.Add(ref _bgSweepTicks, Stopwatch.GetTimestamp() - t0);
                if (n < Batch)
                {
                    _sweepDone = true;
                    Volatile.Write(ref _bgSweepRunning, 0);
                    return;
                }
            }
            finally
            {
                _world.ExitReadLock();
            }
        }
    }
}
