using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// Go's fixalloc: a free-list allocator of fixed-size native blocks (span structs, tiny masks), carved from
/// 64 KiB chunks that live as long as the heap. Blocks come back zeroed.
/// Concurrency model: not thread-safe; every user holds the mheap lock.
/// </summary>
internal sealed unsafe class FixAlloc(int blockSize) : IDisposable
{
    private const int ChunkBytes = 64 << 10;
    private readonly int _blockSize = Math.Max(blockSize, sizeof(nint) * 2);
    private void* _chunks;      // singly linked through each chunk's first word (no managed allocation on growth)
    private void* _freeList;     // singly linked through each free block's first word
    private byte* _chunk;
    private int _chunkLeft;

    /// <summary>Bytes taken from the OS for chunks (part of Sys).</summary>
    public long Sys { get; private set; }

    /// <summary>Blocks handed out and not yet freed.</summary>
    public long InUse { get; private set; }

    public void* Alloc()
    {
        void* p;
        if (_freeList != null)
        {
            p = _freeList;
            _freeList = *(void**)p;
            NativeMemory.Clear(p, (nuint)_blockSize);
        }
        else
        {
            if (_chunkLeft < _blockSize)
            {
                int bytes = Math.Max(ChunkBytes, _blockSize) + sizeof(nint);
                byte* chunk = (byte*)NativeMemory.AllocZeroed((nuint)bytes);
                *(void**)chunk = _chunks;
                _chunks = chunk;
                _chunk = chunk + sizeof(nint);
                _chunkLeft = bytes - sizeof(nint);
                Sys += bytes;
            }
            p = _chunk;
            _chunk += _blockSize;
            _chunkLeft -= _blockSize;
        }
        InUse++;
        return p;
    }

    public void Free(void* p)
    {
        *(void**)p = _freeList;
        _freeList = p;
        InUse--;
    }

    public void Dispose()
    {
        while (_chunks != null)
        {
            void* next = *(void**)_chunks;
            NativeMemory.Free(_chunks);
            _chunks = next;
        }
        _freeList = null;
        _chunk = null;
        _chunkLeft = 0;
    }
}
