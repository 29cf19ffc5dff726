using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// One mutator's roots, as a precise collector needs them (the collector is described in NodeHeap.Gc.cs): words the
/// mark starts from. Each word holds 0 or a pointer (a raw arena address, or a client pointer with its node's
/// generation in the top 16 bits); the marker checks every word and never trusts one. Used as a shadow stack
/// (<see cref="Push"/>/<see cref="Pop"/>, what a compiler's stack maps give Go) or as a table of handles
/// (<see cref="Add"/>/<see cref="Remove"/>, a client's roots).
/// <para>
/// Concurrency model: like an mcache, a root set has one owner; the collector reads it only with the world stopped
/// (between the owner's mutator scopes, or from inside the owner's own allocation). While a concurrent mark runs, every
/// word stored into the set (Push, Add, the indexer) is shaded first (GcBarrier.cs), so the set is never rescanned;
/// words dropped (Pop, Remove, Clear) need nothing: what only they held became garbage during the cycle. Invariant: words at and above
/// <see cref="Count"/> are never read; a removed handle holds 0 until <see cref="Add"/> reuses it.
/// </para>
/// </summary>
public sealed unsafe class RootSet
{
    private ulong* _words;
    private int _count;
    private int _capacity;
    private readonly Stack<int> _holes = new();      // removed handles below _count, for Add to reuse

    internal RootSet(NodeHeap heap)
    {
        Heap = heap;
        _capacity = 64;
        _words = (ulong*)NativeMemory.AllocZeroed((nuint)_capacity * sizeof(ulong));
    }

    public NodeHeap Heap { get; }

    /// <summary>Words in use, holes included: the marker reads words [0, Count).</summary>
    public int Count => _count;

    /// <summary>Roots that hold a pointer (not 0).</summary>
    public int Live
    {
        get
        {
            int n = 0;
            for (int i = 0; i < _count; i++) n += _words[i] != 0 ? 1 : 0;
            return n;
        }
    }

    public ulong this[int index]
    {
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        get
        {
            if ((uint)index >= (uint)_count) ThrowIndex(index);
            return _words[index];
        }
        [MethodImpl(MethodImplOptions.AggressiveInlining)]
        set
        {
            if ((uint)index >= (uint)_count) ThrowIndex(index);
            if (Heap.IsMarking) Heap.ShadeRoot(value);            // the root barrier (GcBarrier.cs)
            _words[index] = value;
        }
    }

    /// <summary>Pushes a root onto the top (a shadow-stack frame's slot); returns its index.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Push(ulong word)
    {
        if (_count == _capacity) Grow();
        if (Heap.IsMarking) Heap.ShadeRoot(word);
        _words[_count] = word;
        return _count++;
    }

    /// <summary>Drops the top <paramref name="n"/> roots.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public void Pop(int n = 1)
    {
        if ((uint)n > (uint)_count) ThrowIndex(n);
        _count -= n;
    }

    /// <summary>A root handle: a hole left by <see cref="Remove"/>, or a new word on top.</summary>
    public int Add(ulong word)
    {
        while (_holes.TryPop(out int h))
        {
            if (h < _count)
            {
                if (Heap.IsMarking) Heap.ShadeRoot(word);
                _words[h] = word;
                return h;
            }
        }
        return Push(word);
    }

    /// <summary>Releases a handle from <see cref="Add"/>: its object is no longer held by this root.</summary>
    public void Remove(int handle)
    {
        if ((uint)handle >= (uint)_count) ThrowIndex(handle);
        _words[handle] = 0;
        if (handle == _count - 1) _count--;
        else _holes.Push(handle);
    }

    /// <summary>Drops every root.</summary>
    public void Clear()
    {
        _count = 0;
        _holes.Clear();
    }

    /// <summary>The words the marker reads (world stopped).</summary>
    internal ReadOnlySpan<ulong> Words => new(_words, _count);

    private void Grow()
    {
        int capacity = _capacity * 2;
        ulong* words = (ulong*)NativeMemory.AllocZeroed((nuint)capacity * sizeof(ulong));
        Buffer.MemoryCopy(_words, words, (long)capacity * sizeof(ulong), (long)_count * sizeof(ulong));
        NativeMemory.Free(_words);
        _words = words;
        _capacity = capacity;
    }

    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    private void ThrowIndex(int index) =>
        throw new ArgumentOutOfRangeException(nameof(index), index, $"root index out of range: the set holds {_count} roots");

    ~RootSet() => NativeMemory.Free(_words);
}
