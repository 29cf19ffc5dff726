using System.Diagnostics;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// A latency histogram in microseconds with log-linear buckets (16 per power of two, so a percentile is
/// within about 6 % of the truth). One per worker, merged at the end: no locks on the hot path.
/// </summary>
public sealed class Latency
{
    private const int SubBits = 4, Sub = 1 << SubBits;
    private readonly long[] _counts = new long[64 * Sub];

    public long Count { get; private set; }

    public void Record(long startTimestamp)
    {
        double us = Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds;
        Add((long)Math.Max(1, us));
    }

    public void Add(long us)
    {
        _counts[Bucket(us)]++;
        Count++;
    }

    public void Merge(Latency other)
    {
        for (int i = 0; i < _counts.Length; i++) _counts[i] += other._counts[i];
        Count += other.Count;
    }

    /// <summary>The value at quantile <paramref name="q"/> (0..1): the upper edge of its bucket; 0 when empty.</summary>
    public double Percentile(double q)
    {
        if (Count == 0) return 0;
        long rank = (long)Math.Ceiling(q * Count);
        long seen = 0;
        for (int i = 0; i < _counts.Length; i++)
        {
            seen += _counts[i];
            if (seen >= Math.Max(1, rank)) return Upper(i);
        }
        return Upper(_counts.Length - 1);
    }

    private static int Bucket(long v)
    {
        if (v < Sub) return (int)v;
        int exp = 63 - (int)long.LeadingZeroCount(v);
        int mantissa = (int)((v >> (exp - SubBits)) & (Sub - 1));
        return Math.Min((exp - SubBits + 1) * Sub + mantissa, 64 * Sub - 1);
    }

    private static double Upper(int bucket)
    {
        if (bucket < Sub) return bucket;
        int exp = bucket / Sub + SubBits - 1, mantissa = bucket % Sub;
        return (double)((1L << exp) + ((long)(mantissa + 1) << (exp - SubBits))) - 1;
    }
}
