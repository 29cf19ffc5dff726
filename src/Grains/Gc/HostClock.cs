using System.Diagnostics;

namespace ClusterHeap.Grains.Gc;

/// <summary>
/// The clock the cycle's times are taken on (GcNodeTimes, GcCycleTimes): Stopwatch's timestamp in microseconds. On
/// Linux that is CLOCK_MONOTONIC, one clock for every process of a host, so a coordinator can place a node's gate
/// opening on its own timeline when both run on one host; <see cref="Id"/> names the clock (the host's boot id; the
/// machine name and this process where there is none, so that two processes never claim a shared clock they lack).
/// </summary>
internal static class HostClock
{
    private static readonly double UsPerTick = 1e6 / Stopwatch.Frequency;

    /// <summary>The clock's name: equal in two processes only when their timestamps compare.</summary>
    public static string Id { get; } = ReadId();

    /// <summary>Now, in microseconds.</summary>
    public static long NowUs() => ToUs(Stopwatch.GetTimestamp());

    /// <summary>A Stopwatch timestamp in microseconds.</summary>
    public static long ToUs(long timestamp) => (long)(timestamp * UsPerTick);

    private static string ReadId()
    {
        const string bootId = "/proc/sys/kernel/random/boot_id";
        try
        {
            if (OperatingSystem.IsLinux() && File.Exists(bootId))
            {
                return "boot:" + File.ReadAllText(bootId).Trim();
            }
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            // No boot id readable: fall back to a clock of this process only.
        }

        return $"process:{Environment.MachineName}:{Environment.ProcessId}";
    }
}
