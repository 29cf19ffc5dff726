using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// The cluster's side of a stress run's figures, from the central heap's stats: refills, cross-node leases and the
/// nodes' calls to the central heap as deltas per node from before the timed phase to after its wind-down (a node
/// that came back in a new generation counts from zero), peak committed bytes (Σ HeapSys − HeapReleased, sampled
/// every 250 ms while the workers run and once at the end) and live/committed at the end.
/// The central heap may be moving after a node died: a stats read retries while it is unreachable, a sample skips.
/// </summary>
public sealed class ClusterFigures
{
    private readonly ClusterConnection _connection;
    private readonly NodeStats[] _before;

    private ClusterFigures(ClusterConnection connection, NodeStats[] before)
    {
        _connection = connection;
        _before = before;
    }

    public long Refills { get; private set; }
    public long Leases { get; private set; }
    /// <summary>Calls the nodes' data path made to the central heap (growth, leases, large objects elsewhere).</summary>
    public long CentralCalls { get; private set; }
    /// <summary>Written by the sampler, then by <see cref="EndAsync"/> once the sampler has returned (one writer at a time).</summary>
    public long PeakCommittedBytes { get; private set; }
    public double Utilization { get; private set; }

    /// <summary>Takes the figures the deltas start from.</summary>
    public static async Task<ClusterFigures> BeginAsync(ClusterConnection connection) =>
        new(connection, (await StatsAsync(connection))?.Nodes ?? []);

    /// <summary>Samples committed bytes every 250 ms until <paramref name="stop"/>.</summary>
    public async Task SampleAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(TimeSpan.FromMilliseconds(250));
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    ClusterStats s = await _connection.CentralHeap.GetStatsAsync();
                    RaisePeak(s.Nodes.Sum(n => n.HeapSys - n.HeapReleased));
                }
                catch (Exception e) when (StressContext.IsTransient(e))
                {
                    // A node is dying: skip this sample.
                }
            }
        }
        catch (OperationCanceledException)
        {
            // The workers have returned.
        }
    }

    /// <summary>Takes the end figures (the workers have returned; the final free has not run).</summary>
    public async Task EndAsync()
    {
        NodeStats[] end = (await StatsAsync(_connection))?.Nodes ?? [];
        Refills = Delta(end, n => n.Refills);
        Leases = Delta(end, n => n.LeasesTaken);
        CentralCalls = Delta(end, n => n.CentralCalls);
        var sum = NodeStats.Sum(end);
        RaisePeak(sum.HeapSys - sum.HeapReleased);
        Utilization = sum.Utilization;
    }

    private long Delta(NodeStats[] end, Func<NodeStats, long> f) => end.Sum(n =>
        f(n) - (_before.FirstOrDefault(b => b.Node == n.Node && b.Generation == n.Generation) is { } b0 ? f(b0) : 0));

    private void RaisePeak(long committed) => PeakCommittedBytes = Math.Max(PeakCommittedBytes, committed);

    /// <summary>Cluster stats, or null while the central heap is unreachable (it may be moving after a node died).</summary>
    private static async Task<ClusterStats?> StatsAsync(ClusterConnection connection)
    {
        for (int attempt = 0; attempt < 20; attempt++)
        {
            try
            {
                return await connection.CentralHeap.GetStatsAsync();
            }
            catch (Exception e) when (StressContext.IsTransient(e))
            {
                await Task.Delay(250);
            }
        }
        return null;
    }
}
