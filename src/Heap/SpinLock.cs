using System.Runtime.CompilerServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The mcentral and mheap lock: one compare-and-swap to enter, a plain release store to leave, spinning then
/// yielding under contention. Critical sections are a few dozen instructions (list moves, bit flips), never a
/// call out, so a futex-backed lock's second atomic on exit buys nothing here.
/// </summary>
internal struct HeapSpinLock
{
    private int _state;      // 0 free, 1 held
#if DEBUG
    private int _owner;      // managed thread id of the holder, for assertions
#endif

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Enter()
    {
        if (Interlocked.CompareExchange(ref _state, 1, 0) != 0) EnterContended();
#if DEBUG
        _owner = Environment.CurrentManagedThreadId;
#endif
    }

    [MethodImpl(MethodImplOptions.NoInlining)]
    private void EnterContended()
    {
        var spin = new SpinWait();
#if DEBUG
        long start = Environment.TickCount64;
#endif
        do
        {
            spin.SpinOnce(sleep1Threshold: -1);
#if DEBUG
            // Critical sections are microseconds long: a lock held for seconds was leaked or is re-entered.
            if (Environment.TickCount64 - start > 10_000)
            {
                throw new InvalidOperationException(
                    $"heap lock held for over 10 s by managed thread {_owner} (this is thread {Environment.CurrentManagedThreadId}): leaked or re-entered");
            }
#endif
        }
        while (Volatile.Read(ref _state) != 0 || Interlocked.CompareExchange(ref _state, 1, 0) != 0);
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Exit()
    {
#if DEBUG
        _owner = 0;
#endif
        Volatile.Write(ref _state, 0);
    }

#if DEBUG
    public bool IsHeldByCurrentThread => Volatile.Read(ref _state) != 0 && _owner == Environment.CurrentManagedThreadId;
#else
    public bool IsHeldByCurrentThread => Volatile.Read(ref _state) != 0;
#endif
}

/// <summary>Holds a <see cref="HeapSpinLock"/> for a `using` block.</summary>
internal ref struct SpinScope
{
    private ref HeapSpinLock _lock;

    public SpinScope(ref HeapSpinLock l)
    {
        _lock = ref l;
        _lock.Enter();
    }

    public readonly void Dispose() => _lock.Exit();
}
