using System.Runtime.CompilerServices;
using System.Runtime.Intrinsics;

namespace ClusterHeap.Heap;

/// <summary>
/// Go's memclrNoHeapPointers for the allocation fast path. Slots are multiples of 8 bytes and 8-aligned
/// (16 from 16 bytes up); small ones are cleared with a few vector stores inline, big ones with memset.
/// </summary>
internal static unsafe class Zero
{
    private const int InlineLimit = 256;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void Small(nuint addr, nuint size)
    {
        if (size > InlineLimit)
        {
            Unsafe.InitBlockUnaligned((void*)addr, 0, (uint)size);
            return;
        }
        byte* p = (byte*)addr;
        byte* end = p + size;
        for (; p + 32 <= end; p += 32) Vector256.Store(Vector256<byte>.Zero, p);
        if (p + 16 <= end)
        {
            Vector128.Store(Vector128<byte>.Zero, p);
            p += 16;
        }
        if (p < end) *(ulong*)p = 0;
    }
}
