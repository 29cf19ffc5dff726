using System.Diagnostics;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// Latency samples in microseconds, kept as measured so a percentile is a value some call really took (not
/// a histogram bucket's edge). One per worker, merged at the end: no locks on the hot path. Up to
/// <see cref="Capacity"/> samples are all kept; past that a uniform reservoir of that many stands for all of
/// them (Vitter's algorithm R), so a long run's memory stays bounded and its percentiles stay measured values.
/// </summary>
public sealed class Latency
{
    /// <summary>Samples kept per instance (8 MiB of doubles).</summary>
    public const int Capacity = 1 << 20;

    private double[] _samples = new double[1024];
    private int _kept;
    private ulong _rng = 0x9e3779b97f4a7c15;

    /// <summary>Calls recorded (kept or not).</summary>
    public long Count { get; private set; }

    public void Record(long startTimestamp) => Add(Stopwatch.GetElapsedTime(startTimestamp).TotalMicroseconds);

    public void Add(double us)
    {
        Count++;
        if (_kept < Capacity)
        {
            if (_kept == _samples.Length) Array.Resize(ref _samples, Math.Min(Capacity, _samples.Length * 2));
            _samples[_kept++] = us;
            return;
        }
        ulong j = Next() % (ulong)Count;
        if (j < Capacity) _samples[j] = us;
    }

    /// <summary>
    /// Adds <paramref name="other"/>'s samples. Below capacity every sample is kept; past it each side contributes
    /// in proportion to the calls it stands for.
    /// </summary>
    public void Merge(Latency other)
    {
        long total = Count + other.Count;
        if ((long)_kept + other._kept <= Capacity)
        {
            for (int i = 0; i < other._kept; i++) Append(other._samples[i]);
        }
        else
        {
            int mine = (int)Math.Round(Capacity * ((double)Count / total)), theirs = Capacity - mine;
            double[] merged = [.. Pick(_samples, _kept, mine), .. Pick(other._samples, other._kept, theirs)];
            _samples = merged;
            _kept = merged.Length;
        }
        Count = total;
    }

    /// <summary>The sample at quantile <paramref name="q"/> (0..1), nearest rank; 0 when there is none.</summary>
    public double Percentile(double q)
    {
        if (_kept == 0) return 0;
        double[] sorted = _samples[.._kept];
        Array.Sort(sorted);
        long rank = (long)Math.Ceiling(q * sorted.Length);
        return sorted[Math.Clamp(rank - 1, 0, sorted.Length - 1)];
    }

    private void Append(double us)
    {
        if (_kept == _samples.Length) Array.Resize(ref _samples, Math.Min(Capacity, Math.Max(1024, _samples.Length * 2)));
        _samples[_kept++] = us;
    }

    /// <summary><paramref name="n"/> of the first <paramref name="kept"/> samples, chosen at random without repeats.</summary>
    private IEnumerable<double> Pick(double[] samples, int kept, int n)
    {
        double[] copy = samples[..kept];
        n = Math.Min(n, kept);
        for (int i = 0; i < n; i++)
        {
            int j = i + (int)(Next() % (ulong)(kept - i));
            (copy[i], copy[j]) = (copy[j], copy[i]);
        }
        return copy.Take(n);
    }

    private ulong Next()
    {
        _rng ^= _rng << 13;
        _rng ^= _rng >> 7;
        _rng ^= _rng << 17;
        return _rng;
    }
}
