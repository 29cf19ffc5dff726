using System.Globalization;

namespace ClusterHeap.Heap.Tests;

public class SizeClassTests
{
    public static TheoryData<int> SmallClasses()
    {
        var data = new TheoryData<int>();
        for (int c = 1; c < SizeClasses.NumClasses; c++)
        {
            data.Add(c);
        }

        return data;
    }

    // ---- Against Go's reference tables ---------------------------------------------------------

    [Theory]
    [MemberData(nameof(SmallClasses))]
    public void GeneratedTableMatchesGoReferenceRowByRow(int sizeClass)
    {
        ReferenceData.SizeClassRow expected = ReferenceData.SizeClasses().Single(r => r.Class == sizeClass);
        SizeClassInfo actual = SizeClasses.Table[sizeClass - 1];

        Assert.Equal(sizeClass, actual.Class);
        Assert.Equal(expected.BytesPerObject, actual.Size);
        Assert.Equal(expected.BytesPerSpan, actual.SpanBytes);
        Assert.Equal(expected.Objects, actual.Objects);
        Assert.Equal(expected.TailWaste, actual.TailWaste);
        Assert.Equal(expected.MaxWastePercent, actual.MaxWastePercent.ToString("F2", CultureInfo.InvariantCulture));

        // The per-class accessors agree with the table row.
        Assert.Equal(expected.BytesPerObject, SizeClasses.SizeOf(sizeClass));
        Assert.Equal(expected.BytesPerSpan / HeapConstants.PageSize, SizeClasses.PagesOf(sizeClass));
        Assert.Equal(expected.Objects, SizeClasses.ObjectsOf(sizeClass));
    }

    [Fact]
    public void GoReferenceListsExactlyTheGeneratedClasses()
    {
        IReadOnlyList<ReferenceData.SizeClassRow> rows = ReferenceData.SizeClasses();
        Assert.Equal(SizeClasses.Table.Count, rows.Count);
        Assert.Equal(Enumerable.Range(1, SizeClasses.NumClasses - 1), rows.Select(r => r.Class));
    }

    [Fact]
    public void SizeToClass8MatchesGoReferenceEntryByEntry() =>
        AssertEntryByEntry("size_to_class8", 129, ReferenceData.SizeToClass8(), SizeClasses.SizeToClass8);

    [Fact]
    public void SizeToClass128MatchesGoReferenceEntryByEntry() =>
        AssertEntryByEntry("size_to_class128", 249, ReferenceData.SizeToClass128(), SizeClasses.SizeToClass128);

    /// <summary>The generated lookup <paramref name="table"/> has <paramref name="length"/> entries, each Go's.</summary>
    private static void AssertEntryByEntry(string table, int length, IReadOnlyList<int> expected, ReadOnlySpan<byte> actual)
    {
        Assert.Equal(length, actual.Length);
        Assert.Equal(expected.Count, actual.Length);
        for (int k = 0; k < actual.Length; k++)
        {
            Assert.True(expected[k] == actual[k], $"{table}[{k}]: expected {expected[k]}, generated {actual[k]}");
        }
    }

    // ---- Structural properties ------------------------------------------------------------------

    [Fact]
    public void NumClassesIsTableCountPlusOne()
    {
        Assert.Equal(SizeClasses.NumClasses, SizeClasses.Table.Count + 1);
        Assert.Equal(136, SizeClasses.NumSpanClasses);
        Assert.Equal(SizeClasses.NumClasses * 2, SizeClasses.NumSpanClasses);
    }

    [Fact]
    public void ClassZeroIsLargeAndHasNoGeometry()
    {
        Assert.Equal(0, SizeClasses.SizeOf(0));
        Assert.Equal(0, SizeClasses.PagesOf(0));
        Assert.Equal(0, SizeClasses.ObjectsOf(0));
        Assert.Equal(0u, SizeClasses.DivMagicOf(0));
    }

    [Fact]
    public void EveryClassSizeIsAMultipleOf8()
    {
        Assert.All(SizeClasses.Table, c => Assert.Equal(0, c.Size % 8));
    }

    [Fact]
    public void ClassSizesAboveSmallSizeMaxAreMultiplesOf128()
    {
        // size_to_class128 is only exact if every class boundary above 1024 falls on a 128-byte step.
        Assert.All(SizeClasses.Table.Where(c => c.Size > SizeClasses.SmallSizeMax), c => Assert.Equal(0, c.Size % SizeClasses.LargeSizeDiv));
    }

    [Fact]
    public void ClassSizesStrictlyIncreaseUpToMaxSmallSize()
    {
        int[] sizes = SizeClasses.Table.Select(c => c.Size).ToArray();
        for (int i = 1; i < sizes.Length; i++)
        {
            Assert.True(sizes[i] > sizes[i - 1], $"class {i + 1} ({sizes[i]}) is not larger than class {i} ({sizes[i - 1]})");
        }

        Assert.Equal(SizeClasses.MaxSmallSize, sizes[^1]);
    }

    [Fact]
    public void EachSpanIsWholePagesHoldingSpanBytesOverSizeObjects()
    {
        Assert.All(SizeClasses.Table, c =>
        {
            Assert.Equal(0, c.SpanBytes % HeapConstants.PageSize);
            Assert.Equal(SizeClasses.PagesOf(c.Class) * HeapConstants.PageSize, c.SpanBytes);
            Assert.Equal(c.SpanBytes / c.Size, c.Objects);
            Assert.Equal(c.Objects, SizeClasses.ObjectsOf(c.Class));
            Assert.True(c.Objects >= 1);
        });
    }

    [Fact]
    public void TailWasteIsAtMostAnEighthOfTheSpan()
    {
        Assert.All(SizeClasses.Table, c =>
        {
            Assert.Equal(c.SpanBytes % c.Size, c.TailWaste);
            Assert.True(c.TailWaste <= c.SpanBytes / 8, $"class {c.Class}: tail {c.TailWaste} > {c.SpanBytes / 8}");
        });
    }

    [Fact]
    public void TinySizeClassHoldsTinySizeBlocks()
    {
        Assert.Equal(SizeClasses.TinySize, SizeClasses.SizeOf(SizeClasses.TinySizeClass));
        Assert.Equal(SizeClasses.TinySizeClass, SizeClasses.ClassOf(SizeClasses.TinySize));
    }

    [Fact]
    public void PageConstantsDescribe8KiBPages()
    {
        Assert.Equal(8192, HeapConstants.PageSize);
        Assert.Equal(HeapConstants.PageSize - 1, HeapConstants.PageMask);
        Assert.Equal(8, HeapConstants.PtrSize);
    }

    // ---- Lookups ----------------------------------------------------------------------------------

    [Fact]
    public void ClassOfIsTheSmallestFittingClassForEverySmallSize()
    {
        int cls = 1;
        for (int size = 1; size <= SizeClasses.MaxSmallSize; size++)
        {
            // Smallest class whose size is >= size (the sizes increase, so cls only moves forward).
            while (SizeClasses.SizeOf(cls) < size)
            {
                cls++;
            }

            int got = SizeClasses.ClassOf((nuint)size);
            if (got != cls)
            {
                Assert.Fail($"ClassOf({size}) = {got}, expected {cls} (size {SizeClasses.SizeOf(cls)})");
            }
        }
    }

    [Fact]
    public void DivMagicIsGosReciprocal()
    {
        Assert.All(SizeClasses.Table, c => Assert.Equal((uint.MaxValue / (uint)c.Size) + 1, SizeClasses.DivMagicOf(c.Class)));
    }

    [Fact]
    public void ObjectIndexIsExactAtEverySlotStartAndInterior()
    {
        Assert.All(SizeClasses.Table, c =>
        {
            for (int slot = 0; slot <= c.Objects; slot++)
            {
                int start = slot * c.Size;
                foreach (int offset in (int[])[start, start + 1, start + (c.Size / 2), start + c.Size - 1])
                {
                    if (offset <= c.SpanBytes)
                    {
                        Assert.Equal(offset / c.Size, SizeClasses.ObjectIndex(c.Class, (nuint)offset));
                    }
                }
            }
        });
    }

    [Fact]
    public void ObjectIndexEqualsDivisionForEveryOffsetInEverySpan()
    {
        // Exhaustive, as Go's generator checks: 0 <= offset <= spanBytes for every class.
        foreach (SizeClassInfo c in SizeClasses.Table)
        {
            for (int offset = 0; offset <= c.SpanBytes; offset++)
            {
                int got = SizeClasses.ObjectIndex(c.Class, (nuint)offset);
                if (got != offset / c.Size)
                {
                    Assert.Fail($"class {c.Class}: ObjectIndex({offset}) = {got}, expected {offset / c.Size}");
                }
            }
        }
    }
}
