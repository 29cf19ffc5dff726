namespace ClusterHeap.Client.Stress;

/// <summary>xorshift64 as bench/WORKLOADS.md defines it (<c>x ^= x &lt;&lt; 13; x ^= x &gt;&gt; 7; x ^= x &lt;&lt; 17</c>).</summary>
public struct XorShift(ulong seed)
{
    private ulong _x = seed == 0 ? 1 : seed;

    /// <summary>Worker <paramref name="worker"/>'s generator: the run's seed for worker 0, distinct streams for the others.</summary>
    public static XorShift ForWorker(ulong seed, int worker) => new(worker == 0 ? seed : seed ^ ((ulong)worker * 0x9E3779B97F4A7C15UL));

    public ulong Next()
    {
        _x ^= _x << 13;
        _x ^= _x >> 7;
        _x ^= _x << 17;
        return _x;
    }

    /// <summary>Uniform in [0, n).</summary>
    public int Below(int n) => (int)(Next() % (ulong)n);

    /// <summary>Uniform in [min, max].</summary>
    public long Between(long min, long max) => min + (long)(Next() % (ulong)(max - min + 1));

    /// <summary>True with probability <paramref name="percent"/> %.</summary>
    public bool Chance(double percent) => Next() % 10_000 < percent * 100;
}
