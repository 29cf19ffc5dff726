// Size classes: Go's small-object size-class table (Go 1.16 and later), generated at type
// initialization by the same algorithm as Go's src/runtime/mksizeclasses.go (docs/DESIGN.md §3).
//
// A request of 1..MaxSmallSize bytes is rounded up to one of 67 object sizes (classes 1..67;
// class 0 means "large", allocated directly as whole pages). Each class owns a page count: a span
// of that many 8 KiB pages is chopped into equal objects of the class size. The generator keeps
// both kinds of waste at most 12.5%: rounding a request up to its class, and the unused tail of
// a span.
//
// Nothing here is typed in from Go's sizeclasses.go: the tables are computed below and the tests
// compare them with Go's own tables (tests/Heap.Tests/Reference) row by row.
//
// Lookups (ClassOf, SizeOf, ObjectIndex) only index static readonly arrays; they never allocate. The free and
// lookup paths divide with a span's own copy of divMagic (MSpan.ObjectIndex) through the same DivideByMagic.

using System.Diagnostics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>One row of the generated size-class table (as in the comment block of Go's sizeclasses.go).</summary>
/// <param name="Class">Size class, 1..67.</param>
/// <param name="Size">Bytes per object.</param>
/// <param name="SpanBytes">Bytes per span (pages × 8192).</param>
/// <param name="Objects">Objects per span.</param>
/// <param name="TailWaste">Bytes left over at the end of a span.</param>
/// <param name="MaxWastePercent">Worst-case waste of a span of this class, in percent: every object
/// holding the smallest request that maps to the class, plus the tail.</param>
public readonly record struct SizeClassInfo(int Class, int Size, int SpanBytes, int Objects, int TailWaste, double MaxWastePercent);

/// <summary>Go's size classes, generated the way Go's mksizeclasses.go generates them.</summary>
public static class SizeClasses
{
    /// <summary>Number of size classes including class 0 ("large"); the generator checks it.</summary>
    public const int NumClasses = 68;

    /// <summary>Span classes: <c>spanClass = sizeClass &lt;&lt; 1 | noscan</c>.</summary>
    public const int NumSpanClasses = NumClasses << 1;

    /// <summary>Largest small object; bigger requests are "large" (class 0).</summary>
    public const int MaxSmallSize = 32768;

    /// <summary>Granularity of <see cref="SizeToClass8"/>.</summary>
    public const int SmallSizeDiv = 8;

    /// <summary>Sizes up to this use <see cref="SizeToClass8"/>; larger ones <see cref="SizeToClass128"/>.</summary>
    public const int SmallSizeMax = 1024;

    /// <summary>Granularity of <see cref="SizeToClass128"/>.</summary>
    public const int LargeSizeDiv = 128;

    /// <summary>Go's maxTinySize: noscan objects smaller than this use the tiny allocator.</summary>
    public const int TinySize = 16;

    /// <summary>The class of 16-byte blocks (Go's tinySizeClass).</summary>
    public const int TinySizeClass = 2;

    // Index 0 of every per-class array is class 0 ("large"): all zeros.
    private static readonly (int Size, int Pages)[] Classes = MakeClasses();
    private static readonly ushort[] ClassToSize = BuildClassToSize(Classes);
    private static readonly byte[] ClassToPages = BuildClassToPages(Classes);
    private static readonly ushort[] ClassToObjects = BuildClassToObjects(Classes);
    private static readonly uint[] ClassToDivMagic = BuildClassToDivMagic(Classes);
    private static readonly byte[] SizeToClass8Entries = BuildSizeToClass(Classes, 0, SmallSizeDiv, (SmallSizeMax / SmallSizeDiv) + 1);
    private static readonly byte[] SizeToClass128Entries = BuildSizeToClass(Classes, SmallSizeMax, LargeSizeDiv, ((MaxSmallSize - SmallSizeMax) / LargeSizeDiv) + 1);
    private static readonly IReadOnlyList<SizeClassInfo> TableRows = Array.AsReadOnly(BuildTable(Classes));

    /// <summary>Entry k is the class of sizes in (8(k-1), 8k]; 129 entries, entry 0 is class 0.</summary>
    public static ReadOnlySpan<byte> SizeToClass8 => SizeToClass8Entries;

    /// <summary>Entry k is the class of sizes in (1024 + 128(k-1), 1024 + 128k]; 249 entries.</summary>
    public static ReadOnlySpan<byte> SizeToClass128 => SizeToClass128Entries;

    /// <summary>Classes 1..67 (class 0, "large", is not listed).</summary>
    public static IReadOnlyList<SizeClassInfo> Table => TableRows;

    /// <summary>
    /// Size class for a small request, exactly as Go's mallocgc picks it. The caller guarantees
    /// <paramref name="size"/> is in 1..<see cref="MaxSmallSize"/>.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ClassOf(nuint size)
    {
        Debug.Assert(size is >= 1 and <= MaxSmallSize, "ClassOf: size out of 1..MaxSmallSize");
        // Go: if size <= smallSizeMax-8 { size_to_class8[divRoundUp(size, smallSizeDiv)] }
        //     else { size_to_class128[divRoundUp(size-smallSizeMax, largeSizeDiv)] }
        // The range is asserted above, so the bounds checks are skipped.
        return size <= SmallSizeMax - 8
            ? Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(SizeToClass8Entries), (size + (SmallSizeDiv - 1)) >> 3)
            : Unsafe.Add(ref MemoryMarshal.GetArrayDataReference(SizeToClass128Entries), (size - SmallSizeMax + (LargeSizeDiv - 1)) >> 7);
    }

    /// <summary>Bytes per object of a class (Go's class_to_size); class 0 gives 0.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int SizeOf(int sizeClass) => ClassToSize[sizeClass];

    /// <summary>Pages per span of a class (Go's class_to_allocnpages); class 0 gives 0.</summary>
    public static int PagesOf(int sizeClass) => ClassToPages[sizeClass];

    /// <summary>Objects per span of a class; class 0 gives 0.</summary>
    public static int ObjectsOf(int sizeClass) => ClassToObjects[sizeClass];

    /// <summary>Go's class_to_divmagic: <c>^uint32(0)/size + 1</c>; class 0 gives 0.</summary>
    public static uint DivMagicOf(int sizeClass) => ClassToDivMagic[sizeClass];

    /// <summary>
    /// Index of the object containing byte <paramref name="offsetInSpan"/> of a span of class
    /// <paramref name="sizeClass"/>: <c>offset / size</c> computed as Go's objIndex does,
    /// <c>(offset * divMagic) &gt;&gt; 32</c>. Exact for every offset in 0..spanBytes.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int ObjectIndex(int sizeClass, nuint offsetInSpan)
    {
        Debug.Assert((uint)sizeClass < NumClasses, "ObjectIndex: bad size class");
        Debug.Assert(offsetInSpan <= (nuint)(ClassToPages[sizeClass] * HeapConstants.PageSize), "ObjectIndex: offset outside the span");
        return DivideByMagic(offsetInSpan, ClassToDivMagic[sizeClass]);
    }

    /// <summary>Go's objIndex: <c>(offset * divMagic) &gt;&gt; 32</c>, the offset taken as 32 bits (a span is under 4 GiB).</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static int DivideByMagic(nuint offsetInSpan, uint divMagic) => (int)(uint)(((ulong)(uint)offsetInSpan * divMagic) >> 32);

    // ---- Generator (Go's makeClasses) -------------------------------------------------------

    private static (int Size, int Pages)[] MakeClasses()
    {
        var classes = new List<(int Size, int Pages)>(NumClasses) { (0, 0) }; // class 0: dummy ("large")

        // Step 1: walk candidate sizes from 8 to 32768 in steps of `align`. At each power of two
        // the step grows: 16 from 32 on (16-byte alignment for objects >= 32 bytes), size/8 from
        // 128 on (so rounding up wastes at most 12.5%), 256 from 2048 on.
        int align = 8;
        for (int size = align; size <= MaxSmallSize; size += align)
        {
            if (IsPowerOfTwo(size))
            {
                if (size >= 2048)
                {
                    align = 256;
                }
                else if (size >= 128)
                {
                    align = size / 8;
                }
                else if (size >= 32)
                {
                    align = 16;
                }
            }

            if (!IsPowerOfTwo(align))
            {
                throw new InvalidOperationException($"Size-class generator: alignment {align} is not a power of two.");
            }

            // Step 2: the smallest span (a whole number of pages) whose leftover tail is at most
            // 1/8 of the span, so the tail wastes at most 12.5%.
            int allocSize = HeapConstants.PageSize;
            while (allocSize % size > allocSize / 8)
            {
                allocSize += HeapConstants.PageSize;
            }

            int pages = allocSize / HeapConstants.PageSize;

            // Step 3: if the previous class has the same page count and fits the same number of
            // objects, it simply takes this (larger) size instead of a new class being added.
            int last = classes.Count - 1;
            if (classes.Count > 1 && pages == classes[last].Pages && allocSize / size == allocSize / classes[last].Size)
            {
                classes[last] = (size, pages);
                continue;
            }

            classes.Add((size, pages));
        }

        // Step 4: grow each class to the largest size that still fits the same number of objects
        // in the same pages, rounded down to a multiple of 128 (LargeSizeDiv) so that
        // size_to_class128 stays exact. E.g. 8448 (6 objects in 7 pages) becomes 9472.
        for (int i = 1; i < classes.Count; i++)
        {
            (int size, int pages) = classes[i];
            int spanBytes = pages * HeapConstants.PageSize;
            int grown = (spanBytes / (spanBytes / size)) & ~(LargeSizeDiv - 1);
            if (grown > size)
            {
                classes[i] = (grown, pages);
            }
        }

        if (classes.Count != NumClasses)
        {
            throw new InvalidOperationException($"Size-class generator produced {classes.Count} classes, expected {NumClasses}.");
        }

        return [.. classes];
    }

    // Step 5: the lookup tables derived from the classes.

    private static ushort[] BuildClassToSize((int Size, int Pages)[] classes)
        => [.. classes.Select(c => checked((ushort)c.Size))];

    private static byte[] BuildClassToPages((int Size, int Pages)[] classes)
        => [.. classes.Select(c => checked((byte)c.Pages))];

    private static ushort[] BuildClassToObjects((int Size, int Pages)[] classes)
        => [.. classes.Select(c => c.Size == 0 ? (ushort)0 : checked((ushort)(c.Pages * HeapConstants.PageSize / c.Size)))];

    // Multiply-shift divisor (Go 1.16+): offset / size == (offset * (2^32-1)/size + 1) >> 32 for
    // every offset in a span; Go's generator proves it per class, the tests check it exhaustively.
    private static uint[] BuildClassToDivMagic((int Size, int Pages)[] classes)
        => [.. classes.Select(c => c.Size == 0 ? 0u : (uint.MaxValue / (uint)c.Size) + 1)];

    // Entry i is the smallest class whose size is >= first + i*step (the class of sizes in
    // (first + (i-1)*step, first + i*step]): size_to_class8 with (0, 8), size_to_class128 with (1024, 128).
    private static byte[] BuildSizeToClass((int Size, int Pages)[] classes, int first, int step, int count)
    {
        byte[] table = new byte[count];
        for (int i = 0; i < count; i++)
        {
            int size = first + (i * step);
            int cls = 0;
            while (classes[cls].Size < size)
            {
                cls++;
            }

            table[i] = checked((byte)cls);
        }

        return table;
    }

    // The comment block of Go's sizeclasses.go, as data. Max waste: every object of the span holds
    // the smallest request of its class (previous class size + 1), plus the tail.
    private static SizeClassInfo[] BuildTable((int Size, int Pages)[] classes)
    {
        var table = new SizeClassInfo[classes.Length - 1];
        int prevSize = 0;
        for (int i = 1; i < classes.Length; i++)
        {
            (int size, int pages) = classes[i];
            int spanBytes = pages * HeapConstants.PageSize;
            int objects = spanBytes / size;
            int tailWaste = spanBytes - (size * objects);
            double maxWaste = (double)(((size - prevSize - 1) * objects) + tailWaste) / spanBytes;
            table[i - 1] = new SizeClassInfo(i, size, spanBytes, objects, tailWaste, 100 * maxWaste);
            prevSize = size;
        }

        return table;
    }

    private static bool IsPowerOfTwo(int x) => x != 0 && (x & (x - 1)) == 0;
}
