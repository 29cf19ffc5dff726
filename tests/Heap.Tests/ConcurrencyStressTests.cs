using System.Collections.Concurrent;

namespace ClusterHeap.Heap.Tests;

/// <summary>
/// Four threads, each with its own mcache, allocate cookie-stamped objects and hand about half to the next thread
/// to free (cross-thread frees, many into spans the allocating thread still caches); a fifth thread verifies the
/// heap while they run. Every cookie is checked before its object is freed and at the end.
/// </summary>
[Collection(SerialCollection.Name)]   // CPU-heavy: keep it off the other tests' cores
public unsafe class ConcurrencyStressTests
{
    private const int Threads = 4;
    private const int Batches = 250;
    private const int PerBatch = 64;

    private readonly record struct Obj(nuint P, int Size, ulong Cookie);

    private static ulong Cookie(nuint p, long seq)
    {
        ulong z = (ulong)p ^ (ulong)seq * 0x9E3779B97F4A7C15;       // splitmix64 finalizer
        z = (z ^ z >> 30) * 0xBF58476D1CE4E5B9;
        z = (z ^ z >> 27) * 0x94D049BB133111EB;
        return z ^ z >> 31;
    }

    /// <summary>Writes the cookie over the whole object: whole words, then the cookie's low bytes in the tail.</summary>
    private static void Stamp(Obj o)
    {
        int i = 0;
        for (; i + 8 <= o.Size; i += 8) *(ulong*)(o.P + (nuint)i) = o.Cookie;
        for (; i < o.Size; i++) *(byte*)(o.P + (nuint)i) = (byte)(o.Cookie >> (8 * (i & 7)));
    }

    private static bool Intact(Obj o)
    {
        int i = 0;
        for (; i + 8 <= o.Size; i += 8) if (*(ulong*)(o.P + (nuint)i) != o.Cookie) return false;
        for (; i < o.Size; i++) if (*(byte*)(o.P + (nuint)i) != (byte)(o.Cookie >> (8 * (i & 7)))) return false;
        return true;
    }

    private static (int Size, bool Noscan) PickSize(Random rng, bool tinyHeavy) => tinyHeavy
        ? rng.Next(100) switch
        {
            // Mostly tiny sizes that fill blocks exactly (full blocks die by their last free, whoever frees it), and
            // 16-byte noscan objects, which share the tiny blocks' span class and free stack.
            < 30 => (8, true),
            < 45 => (4, true),
            < 65 => (rng.Next(1, 16), true),
            < 85 => (16, true),
            _ => (rng.Next(16, 1025), rng.Next(2) == 0),
        }
        : rng.Next(100) switch
        {
            < 40 => (rng.Next(1, 16), true),                               // tiny
            < 90 => (rng.Next(16, 4097), rng.Next(2) == 0),                // small
            < 98 => (rng.Next(4097, 32769), rng.Next(2) == 0),             // big small
            _ => (rng.Next(32769, 100_000), rng.Next(2) == 0),              // large
        };

    [Fact]
    public void TheCookieCheckCatchesASingleFlippedByte()
    {
        // Broken control for the detector the stress test relies on.
        using NodeHeap heap = TestHeap.Create();
        MCache c = heap.CreateCache();
        foreach (int size in new[] { 3, 13, 64, 100 })
        {
            var o = new Obj(c.Malloc((nuint)size), size, Cookie(1234, size));
            Stamp(o);
            Assert.True(Intact(o));
            *(byte*)(o.P + (nuint)size - 1) ^= 0x40;
            Assert.False(Intact(o));
        }
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void FourThreadsWithCrossThreadFreesKeepEveryCookieAndTheVerifierClean(bool tinyHeavy)
    {
        using NodeHeap heap = TestHeap.Create(arena: 512L << 20, slot: 30);
        var queues = new ConcurrentQueue<Obj>[Threads];
        for (int t = 0; t < Threads; t++) queues[t] = new ConcurrentQueue<Obj>();
        var kept = new List<Obj>[Threads];
        var caches = new MCache[Threads];
        var errors = new ConcurrentQueue<string>();
        using var allocDone = new Barrier(Threads);
        int running = Threads;
        long batchesDone = 0;
        long crossFrees = 0, crossIntoCached = 0;

        // Frees go through the freeing thread's own mcache (its free stacks, a lock-free claim) or through the node
        // heap (the locks), by address bits 3 and 4, so both paths race on the same spans, on the two 8-byte halves of
        // a tiny block and, via the queues, on the same objects.
        void CheckAndFree(Obj o, int thread, bool cross)
        {
            if (!Intact(o)) errors.Enqueue($"thread {thread}: cookie of {TestHeap.Hex(o.P)} ({o.Size} B) damaged before free");
            if (cross)
            {
                Interlocked.Increment(ref crossFrees);
                MSpan* s = TestHeap.SpanOf(heap, o.P);
                if (s->Cache == SpanCache.MCache) Interlocked.Increment(ref crossIntoCached);
            }
            PointerError e = ((o.P >> 3 ^ o.P >> 4) & 1) == 0 ? caches[thread].TryFree(o.P) : heap.TryFree(o.P);
            if (e != PointerError.None) errors.Enqueue($"thread {thread}: free of {TestHeap.Hex(o.P)} refused: {e}");
        }

        void Worker(int t)
        {
            try
            {
                MCache cache = heap.CreateCache();
                caches[t] = cache;
                var rng = new Random(1000 + t);
                var local = new List<Obj>();
                long seq = (long)t << 40;
                for (int b = 0; b < Batches; b++, Interlocked.Increment(ref batchesDone))
                {
                    using MutatorScope m = heap.EnterMutator();
                    for (int k = 0; k < PerBatch; k++)
                    {
                        (int size, bool noscan) = PickSize(rng, tinyHeavy);
                        nuint p = cache.Malloc((nuint)size, noscan);
                        var o = new Obj(p, size, Cookie(p, ++seq));
                        if (!TestHeap.AllBytesAre(p, size, 0)) errors.Enqueue($"thread {t}: new object {TestHeap.Hex(p)} not zero");
                        Stamp(o);
                        if (rng.Next(2) == 0) queues[(t + 1) % Threads].Enqueue(o);
                        else local.Add(o);
                        if (local.Count > 300)
                        {
                            int i = rng.Next(local.Count);
                            CheckAndFree(local[i], t, cross: false);
                            local[i] = local[^1];
                            local.RemoveAt(local.Count - 1);
                        }
                        for (int d = 0; d < 2 && queues[t].TryDequeue(out Obj q); d++) CheckAndFree(q, t, cross: true);
                    }
                }
                allocDone.SignalAndWait();                     // nobody enqueues after this
                using (heap.EnterMutator())
                {
                    while (queues[t].TryDequeue(out Obj q)) CheckAndFree(q, t, cross: true);
                }
                kept[t] = local;
            }
            catch (Exception e)
            {
                errors.Enqueue($"thread {t}: {e}");
                try
                {
                    allocDone.RemoveParticipant();
                }
                catch (ObjectDisposedException)
                {
                    // The test already failed (a Join timed out) and disposed the barrier; the error above says why.
                }
            }
            finally
            {
                Interlocked.Decrement(ref running);
            }
        }

        int verifies = 0;
        var verifier = new Thread(() =>
        {
            // One stop-the-world check per round of batches (one per worker), not back to back: a verifier that
            // re-takes the world lock the moment it lets go starves the workers of it.
            long seen = 0;
            while (Volatile.Read(ref running) > 0)
            {
                long target = seen + Threads;
                SpinWait.SpinUntil(() => Volatile.Read(ref batchesDone) >= target || Volatile.Read(ref running) == 0);
                seen = Volatile.Read(ref batchesDone);
                VerifyReport r = heap.Verify();
                verifies++;
                if (!r.Ok) errors.Enqueue($"verify during the run: {r}");
                MemStats s = heap.ReadMemStats();
                if (s.HeapSys != s.HeapIdle + s.HeapInuse) errors.Enqueue("HeapSys != HeapIdle + HeapInuse during the run");
            }
        });
        Thread[] workers = Enumerable.Range(0, Threads).Select(t => new Thread(() => Worker(t))).ToArray();
        verifier.Start();
        foreach (Thread w in workers) w.Start();
        foreach (Thread w in workers) Assert.True(w.Join(TimeSpan.FromSeconds(60)), "a worker did not finish in 60 s (deadlock?)");
        Assert.True(verifier.Join(TimeSpan.FromSeconds(60)));

        Assert.Empty(errors);
        Assert.True(verifies > 0);
        Assert.True(crossFrees > Threads * Batches * PerBatch / 3, $"only {crossFrees} cross-thread frees");
        Assert.True(crossIntoCached > 0, "no cross-thread free landed in a span its allocating thread still cached");

        var remaining = kept.SelectMany(l => l).ToList();
        Assert.All(remaining, o => Assert.True(Intact(o), $"cookie of {TestHeap.Hex(o.P)} damaged"));
        TestHeap.AssertVerifies(heap);
        MemStats end = heap.ReadMemStats();
        Assert.Equal(remaining.Count, end.HeapObjects);
        Assert.Equal(end.HeapSys, end.HeapIdle + end.HeapInuse);

        foreach (Obj o in remaining) heap.Free(o.P);
        foreach (MCache c in caches) heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
        MemStats empty = heap.ReadMemStats();
        Assert.Equal(0, empty.HeapObjects);
        Assert.Equal(0, empty.HeapAlloc);
        Assert.Equal(0, empty.HeapInuse);
    }
}

/// <summary>Two threads race to free the same objects: exactly one free wins each time, the other is refused.</summary>
[Collection(SerialCollection.Name)]
public unsafe class RacingFreeTests
{
    [Fact]
    public void WhenTwoThreadsFreeTheSameObjectExactlyOneSucceeds()
    {
        using NodeHeap heap = TestHeap.Create(arena: 256L << 20, slot: 31);
        MCache c = heap.CreateCache();
        var rng = new Random(5);
        const int N = 20_000;
        nuint[] objs = new nuint[N];
        for (int i = 0; i < N; i++)
        {
            int r = rng.Next(10);
            objs[i] = c.Malloc((nuint)(r < 4 ? rng.Next(1, 16) : r < 9 ? rng.Next(16, 2048) : rng.Next(32769, 70_000)));
        }
        var results = new PointerError[2, N];
        using var start = new Barrier(2);
        Thread[] threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
        {
            start.SignalAndWait();
            for (int i = 0; i < N; i++)
            {
                using MutatorScope m = heap.EnterMutator();
                results[t, i] = heap.TryFree(objs[i]);
            }
        })).ToArray();
        foreach (Thread t in threads) t.Start();
        foreach (Thread t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)));
        for (int i = 0; i < N; i++)
        {
            int wins = (results[0, i] == PointerError.None ? 1 : 0) + (results[1, i] == PointerError.None ? 1 : 0);
            Assert.True(wins == 1, $"object {i} at {TestHeap.Hex(objs[i])}: {results[0, i]} / {results[1, i]}");
        }
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
        Assert.Equal(0, heap.ReadMemStats().HeapObjects);
    }

    [Theory]
    [InlineData(8192)]     // one object per span: every winning free sends a span back to mheap
    [InlineData(3072)]
    [InlineData(24576)]
    public void ADoubleFreeRacingTheReleaseOfItsSpanIsRefusedAndHarmless(int size)
    {
        using NodeHeap heap = TestHeap.Create(arena: 256L << 20, slot: 31);
        for (int round = 0; round < 5; round++)
        {
            MCache c = heap.CreateCache();
            const int N = 4000;
            nuint[] objs = new nuint[N];
            for (int i = 0; i < N; i++) objs[i] = c.Malloc((nuint)size);
            heap.ReleaseCache(c);                                  // every span uncached: frees go straight to mcentral
            var results = new PointerError[2, N];
            using var start = new Barrier(2);
            Thread[] threads = Enumerable.Range(0, 2).Select(t => new Thread(() =>
            {
                start.SignalAndWait();
                for (int i = 0; i < N; i++) results[t, i] = heap.TryFree(objs[i]);
            })).ToArray();
            foreach (Thread t in threads) t.Start();
            foreach (Thread t in threads) Assert.True(t.Join(TimeSpan.FromSeconds(60)));
            for (int i = 0; i < N; i++)
            {
                Assert.True((results[0, i] == PointerError.None) ^ (results[1, i] == PointerError.None),
                    $"round {round}, object {i}: {results[0, i]} / {results[1, i]}");
            }
            TestHeap.AssertVerifies(heap);
            Assert.Equal(0, heap.ReadMemStats().HeapObjects);
        }
    }
}
