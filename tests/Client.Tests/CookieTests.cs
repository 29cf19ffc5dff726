using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

public sealed class CookieTests
{
    private static readonly HeapPointer P = HeapPointer.Create(3, 0x00c004100040);

    [Theory]
    [InlineData(8)]
    [InlineData(16)]
    [InlineData(17)]
    [InlineData(1000)]
    public void TheEndsAreTheCookieThenItsComplementAndMatchThemselves(int size)
    {
        var o = new Obj(P, size, 7);
        byte[] ends = new byte[ObjectEnds.Size];
        Cookie.Ends(o, ends);
        Assert.Equal(Cookie.Value(7), BitConverter.ToUInt64(ends, 0));
        Assert.Equal(~Cookie.Value(7), BitConverter.ToUInt64(ends, 8));
        Assert.True(Cookie.Matches(o, ends));
    }

    [Theory]
    [InlineData(8, 8, 0)]
    [InlineData(12, 12, 0)]
    [InlineData(16, 16, 0)]
    [InlineData(17, 8, 8)]
    [InlineData(1000, 8, 8)]
    public void SmallObjectsCarryTheirEndsWholeAndLargerOnesAtBothEnds(long size, int head, int tail) =>
        Assert.Equal((head, tail), ObjectEnds.Parts(size));

    [Fact]
    public void TheCookieDependsOnTheSequence()
    {
        Assert.NotEqual(Cookie.Value(1), Cookie.Value(2));
        Assert.NotEqual(Cookie.Value(1), Cookie.Value(1UL << 63 | 1));
    }

    [Theory]
    [InlineData(12)]
    [InlineData(200)]
    public void AnyChangedByteOfTheCheckedEndsFailsTheMatch(int size)
    {
        var o = new Obj(P, size, 99);
        byte[] ends = new byte[ObjectEnds.Size];
        Cookie.Ends(o, ends);
        (int head, int tail) = ObjectEnds.Parts(size);
        int[] checkedBytes = [.. Enumerable.Range(0, head), .. Enumerable.Range(ObjectEnds.Half, tail)];
        foreach (int i in checkedBytes)
        {
            byte[] bad = (byte[])ends.Clone();
            bad[i] ^= 0x01;
            Assert.False(Cookie.Matches(o, bad), $"byte {i} of a {size}-byte object's ends");
        }
    }
}

public sealed class LatencyTests
{
    [Fact]
    public void PercentilesAreWithinABucketOfTheTruth()
    {
        var l = new Latency();
        for (int us = 1; us <= 10_000; us++) l.Add(us);
        Assert.InRange(l.Percentile(0.5), 5000, 5000 * 1.07);
        Assert.InRange(l.Percentile(0.99), 9900, 9900 * 1.07);
        Assert.InRange(l.Percentile(0.999), 9990, 9990 * 1.07);
        Assert.Equal(10_000, l.Count);
    }

    [Fact]
    public void AnEmptyHistogramReportsZero() => Assert.Equal(0, new Latency().Percentile(0.99));
}
