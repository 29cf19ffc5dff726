using System.Diagnostics.CodeAnalysis;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The node heap: Go's allocator (mallocinit + mallocgc, the Go 1.5-era mheap) over one reserved arena.
/// This is the overview; every other file in src/Heap points here.
///
/// <para><b>Glossary.</b>
/// <i>arena</i>: the reserved range objects live in, grown upward from arena_start as the heap needs pages.
/// <i>page</i>: 8 KiB. <i>span</i> (MSpan.cs): a run of pages, either holding equal slots of one size class,
/// one large object, or nothing (a free run). <i>spans array</i>: page → span, so any address finds its span
/// in O(1). <i>heap bitmap</i> (HeapBitmap.cs): 4 bits per word — object start, freed mark, pointer kind.
/// <i>size class</i> (SizeClasses.cs): Go's 67 small classes; <i>span class</i> = class &lt;&lt; 1 | noscan.
/// <i>mcache</i> (MCache.cs): one owner's span per span class plus the tiny block, and its free stacks
/// (MCache.FreeStack.cs); no locks.
/// <i>mcentral</i> (MCentral.cs): one per span class, the node's spans of that class: partial ones to hand out,
/// full ones, those an mcache or a lease holds, and those waiting to be swept.
/// <i>mheap</i> (MHeap.cs): the pages; free runs, coalescing, growth, scavenging.
/// <i>collector</i> (NodeHeap.Gc.cs): Go's mark and sweep — root sets (RootSet.cs), the mark (GcMarker.cs) into each
/// span's MarkBits, the sweep (GcSweep.cs) by sweepgen, the pacer (GcPacer.cs); stop the world or concurrent
/// (GcConcurrent.cs, with the write barrier of GcBarrier.cs). Explicit frees and the collector work
/// on the same heap: an object goes by whichever comes first.</para>
///
/// <para><b>Layout</b> (HeapLayout.cs): one PROT_NONE reservation at the slot's hint
/// <c>slot &lt;&lt; 40 | 0x00c0 &lt;&lt; 32</c>: spans array (8 B per arena page), bitmap (arena / 16), arena
/// (default 512 GiB). Growing maps arena, spans and bitmap pages read-write together.</para>
///
/// <para><b>Allocation</b> (MCache.Malloc): size 0 → the zero base. Noscan and under 16 bytes → the tiny
/// block (the tiny allocator: TinyBlock.cs for the block's mask, MCache.Tiny.cs for its owner, NodeHeap.Tiny.cs for
/// everyone else). Up to 32 KiB → the cached span's next free slot (allocCache); when it is full the mcache
/// swaps it for another from mcentral (refill); mcentral takes a partial span or a fresh one from mheap (a whole
/// free span already mapped is preferred to a partial one with under a quarter of its slots free); mheap
/// takes a free run or grows the arena, within the growth limit (the cluster's grant to this node). Larger → a
/// span of its own from mheap. Memory comes back zeroed: fresh and released pages are zero already, so only
/// spans whose <c>NeedZero</c> is set are cleared.</para>
///
/// <para><b>Free</b>: every free starts by claiming the object in the heap bitmap — one compare-and-swap turns its
/// start nibble from boundary to the freed mark — so of two frees of one object, on any threads, exactly one wins.
/// The owner of an mcache frees through it (MCache.TryFree): claim first, without a lock, then a small object goes
/// onto the cache's free stack for its class and comes back with the owner's next Malloc of that class (glibc's
/// tcache, tcmalloc's thread cache; Go has no explicit free). Any other thread frees through the node heap
/// (NodeHeap.Free.cs; Read and Write validate through NodeHeap.Access.cs): the spans array gives the span; under its mcentral lock the slot must be an allocated,
/// live object start (else a <see cref="PointerError"/> and no change). An uncached span's slot is freed at once;
/// a cached span's free is recorded in its FreedBits and folded in when the span is uncached, so nothing but the
/// owner touches a cached span's allocation state. Free stacks give their older half back the same way when full.
/// A span with nothing live goes back to mheap, which coalesces it with its free neighbours. The scavenger returns
/// runs idle longer than the delay to the OS with madvise(MADV_DONTNEED) and counts them in HeapReleased.</para>
///
/// <para><b>Leases</b> (NodeHeap.Leases.cs): a span lent to a remote mcache is "cached" by the lease: its free
/// slots are marked allocated for the lessee, who hands them out without calling back. The heap's lease table
/// (lease number → span, slots lent, lessee) is the cluster's only lender-side record: the heap node grain reports
/// and reclaims from it and keeps no copy (src/Grains/README.md draws who owns what across the cluster).</para>
///
/// <para><b>Who owns what here.</b> The mcache owns its cached spans, its free stacks and its open tiny block (one
/// owner, no lock); an mcentral owns its span class's span lists and the free counts of uncached spans (its lock);
/// mheap owns pages, free runs, the growth limit and the scavenger (its lock); the bitmap owns liveness (one
/// compare-and-swap decides a free); the lease table owns what was lent (its lock). A Malloc asks mcache →
/// mcentral → mheap and, when mheap is at the growth limit, gets the reason back (MCache.TryMalloc) so the cluster
/// tier can ask for a grant; a Free asks the bitmap, then the owner's stack or the mcentral.</para>
///
/// <para><b>Concurrency model</b>: mcaches are single-owner; each mcentral has a lock; mheap has one lock;
/// lock order mcentral → mheap. A world lock lets ReadMemStats and Verify see a still heap: mutators hold its
/// shared side (<see cref="EnterMutator"/>) around batches of work; the readers take the exclusive side.</para>
///
/// <para><b>Invariants</b> (HeapVerifier.cs checks all of them): every mapped arena page is in exactly one in-use
/// span or one free run and the spans array agrees; objects never overlap and sit in in-use spans of their
/// class; boundary bits are set exactly at live object starts (not at slots freed while cached or on a free
/// stack, which carry the freed mark); free stacks hold only such claimed slots; per span allocCount + free slots == nelems;
/// HeapSys == HeapIdle + HeapInuse; HeapObjects == Mallocs - Frees; HeapAlloc == live slot bytes + large bytes
/// == the BySize sum; every in-use span is swept (no mark bits) or waits, uncached, on an unswept list with the last
/// mark's bits.</para>
/// </summary>
public sealed unsafe partial class NodeHeap : IDisposable
{
    /// <summary>Poison-on-free fill byte (mimalloc-style debug aid).</summary>
    public const byte PoisonByte = 0xDD;

    /// <summary>Go's emptymspan: what an mcache holds for a span class before its first refill (no free slots).</summary>
    internal static readonly MSpan* EmptySpan = (MSpan*)NativeMemory.AllocZeroed((nuint)sizeof(MSpan));

    private readonly MHeap _mheap;
    private readonly HeapBitmap _bitmap;
    private readonly MCentral[] _centrals = new MCentral[SizeClasses.NumSpanClasses];
    private readonly ReaderWriterLockSlim _world = new(LockRecursionPolicy.NoRecursion);
    private readonly Lock _cachesLock = new();
    private readonly List<MCache> _caches = [];                     // guarded by _cachesLock
    private readonly long[] _retiredObjectMallocs = new long[SizeClasses.NumClasses];   // guarded by _cachesLock
    private readonly long[] _retiredSlotAllocs = new long[SizeClasses.NumClasses];      // guarded by _cachesLock
    private readonly long[] _retiredOwnerFrees = new long[SizeClasses.NumClasses];      // guarded by _cachesLock
    private readonly long[] _retiredSlotReuses = new long[SizeClasses.NumClasses];      // guarded by _cachesLock
    private long _retiredTinyAllocs;                                // guarded by _cachesLock
    private readonly Timer? _scavengeTimer;
    private readonly ulong* _zeroBase;
    private readonly bool _poisonOnFree;
    private readonly nuint _arenaStart;      // = Layout.ArenaStart, kept beside the hot fields
    private readonly nuint _arenaSize;
    private readonly bool _collector;         // Options.Collector: the pacer starts cycles (NodeHeap.Gc.cs)
    private bool _disposed;

    private NodeHeap(HeapOptions options, HeapLayout layout)
    {
        Options = options;
        Layout = layout;
        _mheap = new MHeap(layout, options.ScavengeDelay, options.GrowthLimit) { TrackHeapLive = options.Collector || options.TrackHeapLive };
        _bitmap = _mheap.Bitmap;
        for (int spc = 0; spc < _centrals.Length; spc++)
        {
            _centrals[spc] = new MCentral(_mheap, (byte)spc) { Reclaim = Reclaim, PoisonOnSweep = options.PoisonOnFree };
        }
        _collector = options.Collector;
        Pacer = new GcPacer(options.GcPercent, options.MemoryLimit);
        _zeroBase = (ulong*)layout.ReservationStart;
        _poisonOnFree = options.PoisonOnFree;
        _arenaStart = layout.ArenaStart;
        _arenaSize = (nuint)layout.ArenaSize;
        if (options.BackgroundScavenger && options.ScavengeDelay > TimeSpan.Zero)
        {
            var period = TimeSpan.FromTicks(Math.Max(options.ScavengeDelay.Ticks / 2, TimeSpan.FromMilliseconds(100).Ticks));
            _scavengeTimer = new Timer(_ => ScavengeQuietly(), null, period, period);
        }
    }

    /// <summary>mallocinit: reserves the node's spans array, bitmap and arena at its slot's hint.</summary>
    public static NodeHeap Create(HeapOptions? options = null)
    {
        options ??= new HeapOptions();
        if (options.GrowthLimit < 0) throw new HeapInitException($"growth limit must not be negative, got {options.GrowthLimit}");
        if (options.MemoryLimit < 0) throw new HeapInitException($"memory limit must not be negative, got {options.MemoryLimit}");
        var layout = HeapLayout.Reserve(options.ArenaSize, options.Slot, options.SlotHintOnly);
        var heap = new NodeHeap(options, layout);
        if (options.Collector) StartCollectorWarmup(heap.LocalWarmKind);              // GcWarmup.cs
        if (options.TrackHeapLive) StartCollectorWarmup(WarmKind.Sessions);
        return heap;
    }

    public HeapOptions Options { get; }
    public HeapLayout Layout { get; }
    public nuint ArenaStart => _mheap.ArenaStart;
    public nuint ArenaEnd => _mheap.ArenaEnd;
    public nuint ArenaUsed => _mheap.ArenaUsed;

    /// <summary>Freed objects are filled with <see cref="PoisonByte"/>.</summary>
    internal bool PoisonOnFree => _poisonOnFree;

    /// <summary>
    /// Go's zerobase: the one address every size-0 allocation returns. Freeing it is a no-op, and it is never
    /// read or written (a zero-length access touches no byte). It is the reservation's first byte (the spans
    /// array's start, never an object), so it lies in this node's slot: a cluster pointer to it names its node
    /// like any other pointer and routes back here.
    /// </summary>
    public nuint ZeroBase => (nuint)_zeroBase;

    /// <summary>Most bytes of arena the heap may map; growth past it fails with <see cref="OutOfMemoryReason.GrowthLimit"/>.</summary>
    public long GrowthLimit
    {
        get => _mheap.GrowthLimit;
        set
        {
            ArgumentOutOfRangeException.ThrowIfNegative(value);
            _mheap.GrowthLimit = value;
        }
    }

    /// <summary>A new mcache for one owner (thread or grain activation). Give it back with <see cref="ReleaseCache"/>.</summary>
    public MCache CreateCache()
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var cache = new MCache(this, _mheap);
        using (_cachesLock.EnterScope())
        {
            cache.BornMarked = _marking && (DebugBreak & GcDebugBreak.SkipBornMarked) == 0;
            _caches.Add(cache);
        }
        return cache;
    }

    /// <summary>Hands a cache's spans and tiny block back and keeps its counters.</summary>
    public void ReleaseCache(MCache cache)
    {
        if (cache.Released) return;
        cache.ReleaseAll();
        using (_cachesLock.EnterScope())
        {
            _caches.Remove(cache);
            for (int c = 0; c < SizeClasses.NumClasses; c++)
            {
                _retiredObjectMallocs[c] += cache.ObjectMallocs(c);
                _retiredSlotAllocs[c] += cache.SlotAllocs[c];
                _retiredOwnerFrees[c] += cache.OwnerFrees(c);
                _retiredSlotReuses[c] += cache.SlotReuses(c);
            }
            _retiredTinyAllocs += cache.TinyAllocs;
        }
    }

    /// <summary>
    /// The shared side of the world lock: hold it around a batch of mcache, free, read or write calls on a thread
    /// that runs concurrently with others, so that ReadMemStats and Verify see the heap between batches.
    /// </summary>
    public MutatorScope EnterMutator()
    {
        _world.EnterReadLock();
        return new MutatorScope(_world);
    }

    /// <summary>Returns idle free runs to the OS now; <paramref name="force"/> ignores the delay. Bytes released.</summary>
    public long Scavenge(bool force = false) => _mheap.Scavenge(force);

    private void ScavengeQuietly()
    {
        // Timer.Dispose does not wait for a callback already running, so the tick holds the world lock's shared
        // side: Dispose (exclusive side) cannot unmap the arena or free the free lists under it, and a tick that
        // starts after Dispose sees _disposed.
        _world.EnterReadLock();
        try
        {
            if (!_disposed) _mheap.Scavenge(force: false);
        }
        catch (OsMemoryException)
        {
            // The next tick tries again; HeapReleased only moves when madvise succeeded.
        }
        finally
        {
            _world.ExitReadLock();
        }
    }

    internal MCentral MCentralOf(int spc) => _centrals[spc];

    [DoesNotReturn]
    internal void ThrowOutOfMemory(OutOfMemoryReason reason, long requested)
    {
        long mapped = (long)(_mheap.ArenaUsed - _mheap.ArenaStart);
        long limit = reason == OutOfMemoryReason.GrowthLimit ? _mheap.GrowthLimit : _mheap.ArenaSize;
        HeapThrow.OutOfMemory(reason, requested, limit, mapped);
    }

    /// <summary>Snapshot of the live caches (stats, verifier); callers hold the world lock exclusively.</summary>
    private MCache[] CachesSnapshot()
    {
        using (_cachesLock.EnterScope()) return [.. _caches];
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        _scavengeTimer?.Dispose();
        StopMarkWorker();
        _world.EnterWriteLock();
        try
        {
            foreach (MCentral c in _centrals) c.Dispose();
            _marker?.Dispose();
            FreeBarrierBuffers();
            _mheap.Dispose();
            OsMemory.Free(Layout.ReservationStart, (nuint)Layout.ReservationSize);
        }
        finally
        {
            _world.ExitWriteLock();
        }
    }
}

/// <summary>The shared side of a node heap's world lock; see <see cref="NodeHeap.EnterMutator"/>.</summary>
public readonly ref struct MutatorScope(ReaderWriterLockSlim world)
{
    public void Dispose() => world.ExitReadLock();
}

/// <summary>Node heap settings.</summary>
public sealed record HeapOptions
{
    /// <summary>Arena bytes to reserve (rounded up to a page). Default 512 GiB; at most what fits a 1 TiB slot.</summary>
    public long ArenaSize { get; init; } = HeapLayout.DefaultArenaSize;

    /// <summary>Arena slot: the reservation is asked for at slot &lt;&lt; 40 | 0x00c0 &lt;&lt; 32 first.</summary>
    public int Slot { get; init; }

    /// <summary>Reserve at <see cref="Slot"/>'s hint or fail, never along the other slots (GcWarmup.cs's scratch heaps).</summary>
    internal bool SlotHintOnly { get; init; }

    /// <summary>Free runs idle longer than this go back to the OS.</summary>
    public TimeSpan ScavengeDelay { get; init; } = TimeSpan.FromMinutes(5);

    /// <summary>Run the scavenger on a timer (every half delay). Off: only explicit <see cref="NodeHeap.Scavenge"/>.</summary>
    public bool BackgroundScavenger { get; init; } = true;

    /// <summary>Most bytes of arena the heap may map.</summary>
    public long GrowthLimit { get; init; } = long.MaxValue;

    /// <summary>Fill freed objects with <see cref="NodeHeap.PoisonByte"/> (makes use-after-free visible).</summary>
    public bool PoisonOnFree { get; init; }

    /// <summary>
    /// The heap is garbage collected (NodeHeap.Gc.cs): the pacer starts cycles at the shouldhelpgc points, and an
    /// allocation runs a cycle before it fails at a limit. Its mutators must keep their pointers in root sets.
    /// Off (default): frees are explicit, and a cycle runs only when NodeHeap.Collect is called.
    /// </summary>
    public bool Collector { get; init; }

    /// <summary>
    /// Keep heap_live as allocation goes without starting cycles here: for a heap whose cycles are coordinated from
    /// outside (the cluster's, src/Grains/Gc), whose pacer reads <see cref="NodeHeap.HeapLive"/>. Implied by <see cref="Collector"/>.
    /// </summary>
    public bool TrackHeapLive { get; init; }

    /// <summary>GOGC: the heap goal is this many percent above the bytes the last mark found live; negative = off.</summary>
    public int GcPercent { get; init; } = 100;

    /// <summary>GOMEMLIMIT, in heap bytes: the heap goal never exceeds it. Default: none.</summary>
    public long MemoryLimit { get; init; } = long.MaxValue;

    /// <summary>Stop the world (default) or concurrent marking with a write barrier (GcConcurrent.cs).</summary>
    public GcMode GcMode { get; init; } = GcMode.StopTheWorld;

    /// <summary>Concurrent mode: a dedicated background thread does the mark work (default); off: mutators' assists do.</summary>
    public bool MarkWorker { get; init; } = true;

    /// <summary>GODEBUG=gccheckmark=1: after each concurrent mark, a stop-the-world mark from scratch must find every reachable object marked (GcCheckmark.cs).</summary>
    public bool Checkmark { get; init; }

    /// <summary>
    /// Sweep in the background after each cycle (Go's bgsweep, GcSweep.cs). Off: spans stay unswept until a refill,
    /// a growth or the next cycle sweeps them, or <see cref="NodeHeap.FinishSweep"/> is called (tests that look at
    /// unswept spans).
    /// </summary>
    public bool BackgroundSweeper { get; init; } = true;

    /// <summary>Called at the end of each cycle, the world still stopped (GcCycle.Trace is its gctrace line); null: none.</summary>
    public Action<GcCycle>? OnGcCycle { get; init; }
}
