namespace ClusterHeap.Heap;

/// <summary>
/// The collector's pause paths, compiled before any heap's first pause (the collector's overview is NodeHeap.Gc.cs).
/// .NET compiles a method the first time it runs. Without this, a process's first cycle runs some fifty of the
/// collector's methods for the first time with the world stopped (sweep termination, the mcache flush, shading the
/// roots, mark termination, the sweep's start), and compiling them was the whole of binary-trees' 3.3–3.9 ms pause
/// maximum: its first cycle's two pauses, 1.9 + 1.3 ms, 96 % of it JIT time on the pausing thread, every later pause
/// compiling nothing (README, "binary-trees"). Go's runtime is compiled ahead of time and never pays this.
/// <para>
/// The same paths run here once per process and kind of pause, on a scratch heap of their own, which builds a few
/// objects of every shape (scan, noscan, tiny, large, a pointer to another node's arena), keeps some rooted, drops the
/// rest and runs real cycles, twice so that a pause sweeps what the last left: local cycles of the heap's mode (its
/// own Collect, the pacer's), or coordinated sessions of both kinds (a cluster node's). Creating a heap that collects
/// (or whose cycles a coordinator drives) queues its kind's warm-up on the thread pool, so it is usually done, on
/// another core, before the first cycle asks; a cycle start, a coordinator's sweep before it stops the nodes or a
/// session's begin that comes first runs it, or waits for it, before it stops anything: with the mutators running, as
/// Go's gcStart sweeps before it stops the world. Paths the scratch cycles do not take (checkmark, a grey stack that
/// outgrows its first buffer, the debug breaks) still compile where they first run.
/// </para>
/// Concurrency model: once per process and kind, under <see cref="WarmupLock"/>; a thread that arrives while another
/// warms waits for it outside any pause (no heap lock is held across the wait: the callers hold at most their own
/// heap's shared world side, which no scratch heap touches). The scratch heaps' own cycles find the warm-up in
/// progress on their thread and go on. A scratch heap reserves at the highest free slot's own hint below the last (far
/// from the slots a cluster hands out first; never along the slot loop) and is gone before the warm-up returns.
/// </summary>
public sealed unsafe partial class NodeHeap
{
    /// <summary>Which pauses a warm-up covers: a heap's local cycles in its mode, or a coordinator's sessions.</summary>
    [Flags]
    private enum WarmKind
    {
        StopTheWorld = 1,       // Collect and the pacer's cycles, GcMode.StopTheWorld
        Concurrent = 2,         // the same, GcMode.Concurrent (both pauses)
        Sessions = 4,           // BeginMarkSession and BeginConcurrentMarkSession, each to its Finish
    }

    private static readonly Lock WarmupLock = new();
    private static int _warmKinds;                    // WarmKind bits warmed (or given up on: no scratch reservation)
    private static int _queuedKinds;                  // WarmKind bits a heap's creation queued
    private static bool _warming;                     // guarded by WarmupLock: the lock's owner is warming up

    private WarmKind LocalWarmKind => ConcurrentMode ? WarmKind.Concurrent : WarmKind.StopTheWorld;

    /// <summary>Queues the warm-up of <paramref name="kind"/> on the thread pool, once per process (a heap needing it was made).</summary>
    private static void StartCollectorWarmup(WarmKind kind)
    {
        if ((Volatile.Read(ref _warmKinds) & (int)kind) != 0) return;
        if ((Interlocked.Or(ref _queuedKinds, (int)kind) & (int)kind) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static k => WarmCollector((WarmKind)k!), kind);
    }

    /// <summary>Runs the paths of <paramref name="kind"/> once per process, before a first pause; at once after that.</summary>
    private static void EnsureCollectorWarm(WarmKind kind)
    {
        if ((Volatile.Read(ref _warmKinds) & (int)kind) != 0) return;
        WarmCollector(kind);
    }

    private static void WarmCollector(WarmKind kind)
    {
        using (WarmupLock.EnterScope())
        {
            // _warming: a scratch heap's own cycle, on the warming thread (the lock is reentrant).
            if ((_warmKinds & (int)kind) != 0 || _warming) return;
            _warming = true;
            try
            {
                Warm(kind);
            }
            catch (HeapInitException)
            {
                // No scratch reservation could be had: the first pauses compile what they run, as before.
            }
            finally
            {
                _warming = false;
                Interlocked.Or(ref _warmKinds, (int)kind);
            }
        }
    }

    /// <summary>The slot of the last scratch heap (tests: it must be free again), or -1.</summary>
    internal static int LastWarmupSlot { get; private set; } = -1;

    /// <summary>
    /// A scratch heap at the highest slot below the last whose own window is free: never along the slot loop, which
    /// would take the low slots a cluster hands out (the topmost window is where the runtime's own mappings land).
    /// </summary>
    private static NodeHeap CreateScratchHeap(GcMode mode)
    {
        for (int slot = HeapLayout.MaxSlot - 1; ; slot--)
        {
            try
            {
                NodeHeap heap = Create(new HeapOptions
                {
                    ArenaSize = 64L << 20,
                    Slot = slot,
                    SlotHintOnly = true,
                    BackgroundScavenger = false,
                    BackgroundSweeper = false,                  // the next cycle's pause sweeps what this one left
                    GcMode = mode,
                    MarkWorker = false,
                });
                LastWarmupSlot = slot;
                return heap;
            }
            catch (HeapInitException) when (slot > HeapLayout.MaxSlot / 2)
            {
                // Taken: the next one down (the upper half only; below it, give up: WarmCollector's catch).
            }
        }
    }

    private static void Warm(WarmKind kind)
    {
        using NodeHeap heap = CreateScratchHeap(kind == WarmKind.Concurrent ? GcMode.Concurrent : GcMode.StopTheWorld);
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        ulong foreign = (ulong)HeapLayout.HintFor(0) + HeapConstants.PageSize;   // another arena's address: a foreign word
        for (int round = 0; round < 2; round++)
        {
            WarmObjects(heap, cache, roots, foreign);
            switch (kind)
            {
                case WarmKind.Concurrent:
                    heap.StartConcurrentCycle(forced: true);
                    WarmObjects(heap, cache, roots, foreign);  // born marked, and the write barrier shading old and new words
                    heap.Assist(long.MaxValue);
                    heap.TerminateConcurrentCycle();
                    break;
                case WarmKind.StopTheWorld:
                    heap.Collect();
                    break;
                default:
                    GcMarkSession stopped = heap.BeginMarkSession();
                    stopped.ShadeRoots();
                    stopped.Shade([foreign]);
                    stopped.Finish();
                    WarmObjects(heap, cache, roots, foreign);
                    GcMarkSession concurrent = heap.BeginConcurrentMarkSession();
                    WarmObjects(heap, cache, roots, foreign);
                    concurrent.ShadeRoots();
                    concurrent.Shade([foreign]);
                    concurrent.MarkStep();
                    concurrent.MarkTermination();
                    concurrent.Finish();
                    break;
            }
        }
        heap.ReleaseRoots(roots);
        heap.ReleaseCache(cache);
    }

    /// <summary>A rooted scan object pointing at a chain, a noscan object, tiny objects, a large object and garbage of each.</summary>
    private static void WarmObjects(NodeHeap heap, MCache cache, RootSet roots, ulong foreign)
    {
        ReadOnlySpan<ulong> twoPointers = [0b11];
        nuint keep = cache.MallocTyped(16, twoPointers);
        roots.Push(keep);
        for (int i = 0; i < 64; i++)
        {
            nuint n = cache.MallocTyped(16, twoPointers);
            heap.StorePointer(n, *(ulong*)keep);
            heap.StorePointer(keep, n);
            cache.MallocTyped(16, twoPointers);                                      // garbage
        }
        heap.StorePointer(keep + 8, foreign);
        nuint large = cache.MallocTyped(40 << 10, twoPointers);
        heap.StorePointer(large, cache.Malloc(48, noscan: true));                    // the first word's pointer
        roots.Push(large);
        cache.MallocTyped(40 << 10, twoPointers);                                    // large garbage
        roots.Push(cache.Malloc(8, noscan: true));                                   // tiny, rooted
        cache.Malloc(8, noscan: true);                                               // tiny garbage
        heap.Free(cache.Malloc(32, noscan: true));                                   // an explicit free beside the collector
    }
}
