namespace ClusterHeap.Heap;

/// <summary>
/// The collector's pause paths, compiled before any heap's first pause (the collector's overview is NodeHeap.Gc.cs).
/// .NET compiles a method the first time it runs. Without this, a process's first cycle runs some fifty of the
/// collector's methods for the first time with the world stopped (sweep termination, the mcache flush, shading the
/// roots, mark termination, the sweep's start), and compiling them was the whole of binary-trees' 3.3–3.9 ms pause
/// maximum: its first cycle's two pauses, 1.9 + 1.3 ms, 96 % of it JIT time on the pausing thread, every later pause
/// compiling nothing (README, "binary-trees"). Go's runtime is compiled ahead of time and never pays this.
/// <para>
/// The same paths run here once per process, on a scratch heap of their own: a stop-the-world and a concurrent heap
/// each build a few objects of every shape (scan, noscan, tiny, large, a pointer to another node's arena), keep some
/// rooted and drop the rest, and run real cycles — local ones, twice so that a pause sweeps what the last left, and
/// coordinated sessions of both kinds. It runs before the first stop, with the mutators running: the caller (the
/// thread about to start a cycle, or a coordinator's sweep before it stops the nodes) pays the compilation as
/// mutator time, as Go's gcStart does its sweeping before it stops the world. Creating a heap that collects (or whose
/// cycles a coordinator drives) queues the warm-up on the thread pool at once, so it is usually done — on another
/// core — before the first cycle asks. Paths the scratch cycles do not take (checkmark, a grey stack that outgrows its
/// first buffer, the debug breaks) still compile where they first run.
/// </para>
/// Concurrency model: once per process, under <see cref="WarmupLock"/>; a thread that arrives while another warms
/// waits for it outside any pause (no heap lock is held across the wait: the callers hold at most their own heap's
/// shared world side, which no scratch heap touches). The scratch heaps' own cycles find the warm-up in progress on
/// their thread and go on. The scratch heaps reserve at the last slot's hint (0x7f, far from the slots a cluster
/// hands out first) and are gone before it returns.
/// </summary>
public sealed unsafe partial class NodeHeap
{
    private static readonly Lock WarmupLock = new();
    private static volatile bool s_collectorWarm;      // the warm-up ran (or could not reserve its scratch heap)
    private static bool s_warming;                     // guarded by WarmupLock: the lock's owner is warming up
    private static int s_warmupQueued;                 // 1 once a heap's creation queued the warm-up

    /// <summary>Queues the warm-up on the thread pool, once per process (a heap that collects was created).</summary>
    private static void StartCollectorWarmup()
    {
        if (s_collectorWarm || Interlocked.Exchange(ref s_warmupQueued, 1) != 0) return;
        ThreadPool.UnsafeQueueUserWorkItem(static _ => WarmCollector(), null);
    }

    /// <summary>Runs the collector's paths once per process before a first pause; returns at once after that.</summary>
    private static void EnsureCollectorWarm()
    {
        if (s_collectorWarm) return;
        WarmCollector();
    }

    private static void WarmCollector()
    {
        using (WarmupLock.EnterScope())
        {
            if (s_collectorWarm || s_warming) return;         // s_warming: a scratch heap's own cycle, on the warming thread
            s_warming = true;
            try
            {
                WarmOn(GcMode.StopTheWorld);
                WarmOn(GcMode.Concurrent);
            }
            catch (HeapInitException)
            {
                // No scratch reservation could be had: the first pauses compile what they run, as before.
            }
            finally
            {
                s_warming = false;
                s_collectorWarm = true;
            }
        }
    }

    private static void WarmOn(GcMode mode)
    {
        using NodeHeap heap = Create(new HeapOptions
        {
            ArenaSize = 64L << 20,
            Slot = HeapLayout.MaxSlot,
            BackgroundScavenger = false,
            BackgroundSweeper = false,                          // the next cycle's pause sweeps what this one left
            GcMode = mode,
            MarkWorker = false,
        });
        MCache cache = heap.CreateCache();
        RootSet roots = heap.CreateRoots();
        ulong foreign = (ulong)HeapLayout.HintFor(0) + HeapConstants.PageSize;   // another arena's address: a foreign word
        for (int round = 0; round < 2; round++)
        {
            WarmObjects(heap, cache, roots, foreign);
            if (mode == GcMode.Concurrent)
            {
                heap.StartConcurrentCycle(forced: true);
                WarmObjects(heap, cache, roots, foreign);      // born marked, and the write barrier shading old and new words
                heap.Assist(long.MaxValue);
                heap.TerminateConcurrentCycle();
            }
            else
            {
                heap.Collect();
            }
        }
        WarmObjects(heap, cache, roots, foreign);
        GcMarkSession session = mode == GcMode.Concurrent ? heap.BeginConcurrentMarkSession() : heap.BeginMarkSession();
        session.ShadeRoots();
        session.Shade([foreign]);
        if (session.IsConcurrent)
        {
            session.MarkStep();
            session.MarkTermination();
        }
        session.Finish();
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
