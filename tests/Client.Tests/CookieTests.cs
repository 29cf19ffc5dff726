using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

public sealed class CookieTests
{
    private static readonly HeapPointer P = HeapPointer.Create(3, 0x00c004100040);

    [Theory]
    [InlineData(8, 1)]
    [InlineData(16, 1)]
    [InlineData(17, 2)]
    [InlineData(1000, 2)]
    public void SmallObjectsAreStampedWholeAndLargerOnesAtBothEnds(int size, int parts)
    {
        var o = new Obj(P, size, 7);
        WriteRequest[] writes = [.. Cookie.Writes(o)];
        ReadRequest[] reads = [.. Cookie.Reads(o)];
        Assert.Equal(parts, writes.Length);
        Assert.Equal(parts, reads.Length);
        Assert.Equal(P, writes[0].Pointer);
        Assert.Equal(P.Offset(size - writes[^1].Data.Length), writes[^1].Pointer);
        for (int i = 0; i < parts; i++)
        {
            Assert.Equal(writes[i].Pointer, reads[i].Pointer);
            Assert.Equal(writes[i].Data.Length, reads[i].Length);
            Assert.True(Cookie.Matches(o, i, writes[i].Data));
        }
    }

    [Fact]
    public void TheCookieDependsOnAddressAndSequence()
    {
        ulong v = Cookie.Value(P, 1);
        Assert.NotEqual(v, Cookie.Value(P, 2));
        Assert.NotEqual(v, Cookie.Value(P.Offset(16), 1));
        Assert.NotEqual(v, Cookie.Value(HeapPointer.Create(4, P.Address), 1));
    }

    [Fact]
    public void AnyChangedByteFailsTheMatch()
    {
        var o = new Obj(P, 12, 99);
        byte[] data = Cookie.Writes(o).Single().Data;
        for (int i = 0; i < data.Length; i++)
        {
            byte[] bad = (byte[])data.Clone();
            bad[i] ^= 0x01;
            Assert.False(Cookie.Matches(o, 0, bad));
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
