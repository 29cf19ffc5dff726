using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>Test hooks that break one part of the concurrent mark on purpose, so checkmark can be shown to catch it.</summary>
[Flags]
public enum GcDebugBreak
{
    None = 0,
    /// <summary>Pointer-word writes shade nothing (neither the old nor the new word).</summary>
    SkipWriteBarrier = 1,
    /// <summary>Objects allocated while marking are born unmarked.</summary>
    SkipBornMarked = 2,
    /// <summary>Roots added or set while marking are not shaded.</summary>
    SkipRootBarrier = 4,
}

/// <summary>
/// The write barrier of the concurrent mark (the cycle is described in GcConcurrent.cs): Go's hybrid Yuasa–Dijkstra
/// barrier (mbarrier.go) on every pointer-word write while the heap marks — shade the word being overwritten (Yuasa's
/// deletion barrier: what was reachable at the mark's start stays reachable to the marker) and the word written
/// (Dijkstra's insertion barrier, which Go applies while the writer's stack is grey; a cluster client's stack is never
/// scanned, so here always). Root sets are barriered too (RootSet.cs): a root added, pushed or set while marking is
/// shaded, so a root set needs no rescan at mark termination.
/// <para>
/// Shading here only queues the word (<see cref="BarrierShade"/>): the mark worker, an assist or a session step takes
/// the queue under the mark lock and feeds it to the marker, which checks every word as it checks any other — a torn
/// or stale word is dangling, a word into another node's arena goes to the open session's outbox for routing. The
/// queue is drained to empty in the mark-termination pause, with the mutators stopped, before the sweep may start.
/// </para>
/// Concurrency model: <see cref="_marking"/> changes only with the world stopped; the queue is a native buffer under
/// <see cref="_barrierLock"/> (mutators append, the marker swaps it for its spare); no managed allocation.
/// </summary>
public sealed unsafe partial class NodeHeap
{
    private volatile bool _marking;          // barrier on and allocation born marked; written with the world stopped
    private HeapSpinLock _barrierLock;
    private ulong* _barrierWords;            // guarded by _barrierLock
    private int _barrierCount, _barrierCapacity;
    private ulong* _barrierSpare;            // the marker's: guarded by _markLock
    private int _barrierSpareCapacity;
    private long _barrierShaded;             // words queued since the heap was created; guarded by _barrierLock

    /// <summary>Breaks part of the concurrent mark on purpose (tests showing checkmark catches it). Default none.</summary>
    public GcDebugBreak DebugBreak { get; set; }

    /// <summary>True while a concurrent mark runs: the write barrier is on and new objects are born marked.</summary>
    public bool IsMarking => _marking;

    /// <summary>Words the barrier (writes and roots) has queued for the marker, ever.</summary>
    public long BarrierShaded => Volatile.Read(ref _barrierShaded);

    /// <summary>
    /// Stores <paramref name="value"/> into the pointer word at <paramref name="slot"/> with the write barrier: the
    /// unchecked store of an in-process mutator that knows its types (what compiled Go code does), for which
    /// <paramref name="slot"/> must be a pointer word of a live object of this heap. Clients go through
    /// <see cref="TryWrite"/>, which checks the range and applies the same barrier.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void StorePointer(nuint slot, ulong value)
    {
        if (_marking) StorePointerMarking(slot, value);
        else *(ulong*)slot = value;
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void StorePointerMarking(nuint slot, ulong value)
    {
        if ((DebugBreak & GcDebugBreak.SkipWriteBarrier) == 0)
        {
            BarrierShade(Volatile.Read(ref *(ulong*)slot));
            BarrierShade(value);
        }
        Volatile.Write(ref *(ulong*)slot, value);
    }

    /// <summary>
    /// <see cref="TryWrite"/> while marking: every word of the range the bitmap calls a pointer is shaded before the
    /// copy (its old value) and after it (its new value, read back whole, since the copy may cover only part of it).
    /// </summary>
    [MethodImpl(MethodImplOptions.NoInlining)]
    private void WriteWithBarrier(nuint address, ReadOnlySpan<byte> source)
    {
        bool shade = (DebugBreak & GcDebugBreak.SkipWriteBarrier) == 0 && source.Length != 0;
        nuint first = address & ~(nuint)(HeapConstants.PtrSize - 1), end = address + (nuint)source.Length;
        if (shade) ShadePointerWords(first, end);
        source.CopyTo(new Span<byte>((void*)address, source.Length));
        if (shade) ShadePointerWords(first, end);
    }

    private void ShadePointerWords(nuint first, nuint end)
    {
        for (nuint a = first; a < end; a += HeapConstants.PtrSize)
        {
            if (_bitmap.Get(a) >> HeapBitmap.KindShift == (int)WordKind.Pointer) BarrierShade(Volatile.Read(ref *(ulong*)a));
        }
    }

    /// <summary>A root was added, pushed or set while marking (RootSet.cs): shade it.</summary>
    internal void ShadeRoot(ulong word)
    {
        if ((DebugBreak & GcDebugBreak.SkipRootBarrier) == 0) BarrierShade(word);
    }

    /// <summary>
    /// Queues one word for the marker (Go's shade): skipped when it is 0 or names an object of this heap already marked
    /// (born marked, or reached) — its words are the marker's business already. Any thread.
    /// </summary>
    internal void BarrierShade(ulong word)
    {
        if (word == 0 || MarkedAlready(word)) return;
        _barrierLock.Enter();
        if (_barrierCount == _barrierCapacity) GrowBarrierLocked();
        _barrierWords[_barrierCount++] = word;
        _barrierShaded++;
        _barrierLock.Exit();
    }

    /// <summary>
    /// The word names a slot of one of this heap's in-use spans whose mark bit is set. Read without locks: a stale
    /// answer only queues a word the marker then finds marked (a slot's mark bit is never cleared while marking).
    /// </summary>
    private bool MarkedAlready(ulong word)
    {
        nuint p = (nuint)(word & ((1UL << 48) - 1));
        ushort tag = (ushort)(word >> 48);
        if ((tag != 0 && tag != PointerGeneration) || p - _arenaStart >= _mheap.ArenaUsed - _arenaStart) return false;
        MSpan* s = _mheap.SpanOf(p);
        if (s == null || s->State != SpanState.InUse || p < s->StartAddr) return false;
        int index = s->IsLarge ? 0 : s->ObjectIndex(p);
        return index < MSpan.MaxObjects && (Volatile.Read(ref s->MarkBits[index >> 6]) & (1UL << index)) != 0;
    }

    private void GrowBarrierLocked()
    {
        int capacity = Math.Max(1024, _barrierCapacity * 2);
        ulong* words = (ulong*)NativeMemory.Alloc((nuint)capacity * sizeof(ulong));
        if (_barrierWords != null)
        {
            Buffer.MemoryCopy(_barrierWords, words, (long)capacity * sizeof(ulong), (long)_barrierCount * sizeof(ulong));
            NativeMemory.Free(_barrierWords);
        }
        _barrierWords = words;
        _barrierCapacity = capacity;
    }

    /// <summary>True when the barrier queued words the marker has not taken yet (a hint without the lock).</summary>
    private bool BarrierPending => Volatile.Read(ref _barrierCount) != 0;

    /// <summary>
    /// Takes every queued word and shades it (Go's wbBuf flush into gcWork). Caller holds the mark lock. Returns how
    /// many words it took.
    /// </summary>
    private int DrainBarrierLocked()
    {
        _barrierLock.Enter();
        int n = _barrierCount;
        ulong* words = _barrierWords;
        int capacity = _barrierCapacity;
        _barrierWords = _barrierSpare;
        _barrierCapacity = _barrierSpareCapacity;
        _barrierCount = 0;
        _barrierLock.Exit();
        _barrierSpare = words;
        _barrierSpareCapacity = capacity;
        for (int i = 0; i < n; i++) _marker!.Shade(words[i]);
        return n;
    }

    private void FreeBarrierBuffers()
    {
        NativeMemory.Free(_barrierWords);
        NativeMemory.Free(_barrierSpare);
        _barrierWords = _barrierSpare = null;
        _barrierCapacity = _barrierSpareCapacity = 0;
    }
}
