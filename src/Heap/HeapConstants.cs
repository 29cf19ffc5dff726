namespace ClusterHeap.Heap;

/// <summary>
/// Page geometry shared by the whole heap (Go's <c>_PageShift</c>, <c>_PageSize</c>, <c>_PageMask</c>,
/// <c>goarch.PtrSize</c> on linux/amd64).
/// </summary>
public static class HeapConstants
{
    /// <summary>log2 of the page size: pages are 8 KiB, as in Go.</summary>
    public const int PageShift = 13;

    /// <summary>Bytes per page (8192).</summary>
    public const int PageSize = 1 << PageShift;

    /// <summary>Mask of the offset within a page.</summary>
    public const int PageMask = PageSize - 1;

    /// <summary>Bytes per pointer word (64-bit only).</summary>
    public const int PtrSize = 8;
}
