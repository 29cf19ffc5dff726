using ClusterHeap.Contracts;
using Microsoft.Extensions.Logging;
using Orleans.Runtime;

namespace ClusterHeap.Grains;

/// <summary>
/// Runs in every silo from <see cref="ServiceLifecycleStage.Active"/>: follows Orleans membership and
/// reports each silo declared dead to the central heap grain (by <see cref="SiloAddress"/>; the
/// test host reuses names), which reclaims its slot, grants and leases. Every silo reports, so a
/// death is reported even when the central heap's own silo is the one that died (the report then
/// activates it elsewhere, and it rebuilds without the dead node). Reports are idempotent.
/// Joins need no report: a joining silo registers itself (HeapNodeService).
/// </summary>
public sealed partial class MembershipWatcher(IClusterMembershipService membership, IGrainFactory grains, ILogger<MembershipWatcher> logger)
    : ILifecycleParticipant<ISiloLifecycle>
{
    private readonly IClusterMembershipService _membership = membership;
    private readonly IGrainFactory _grains = grains;
    private readonly ILogger<MembershipWatcher> _logger = logger;
    private readonly CancellationTokenSource _stopping = new();
    private Task _loop = Task.CompletedTask;

    /// <inheritdoc/>
    public void Participate(ISiloLifecycle lifecycle) =>
        lifecycle.Subscribe(nameof(MembershipWatcher), ServiceLifecycleStage.Active, StartAsync, StopAsync);

    private Task StartAsync(CancellationToken cancellation)
    {
        _loop = Task.Run(() => WatchAsync(_stopping.Token), CancellationToken.None);
        return Task.CompletedTask;
    }

    private async Task StopAsync(CancellationToken cancellation)
    {
        await _stopping.CancelAsync();
        await _loop.WaitAsync(cancellation).ConfigureAwait(ConfigureAwaitOptions.SuppressThrowing);
    }

    private async Task WatchAsync(CancellationToken cancellation)
    {
        ClusterMembershipSnapshot? previous = null;
        try
        {
            await foreach (ClusterMembershipSnapshot? snapshot in _membership.MembershipUpdates.WithCancellation(cancellation))
            {
                // The first snapshot still holds old dead rows; only changes after it are news.
                if (previous is not null)
                {
                    foreach (ClusterMember change in snapshot.CreateUpdate(previous).Changes)
                    {
                        if (change.Status == SiloStatus.Dead)
                        {
                            await ReportDeathAsync(change.SiloAddress, change.Name);
                        }
                    }
                }

                previous = snapshot;
            }
        }
        catch (OperationCanceledException) when (cancellation.IsCancellationRequested)
        {
        }
    }

    private async Task ReportDeathAsync(SiloAddress silo, string name)
    {
        LogDeath(_logger, name, silo);
        try
        {
            await _grains.GetGrain<ICentralHeapGrain>(GrainKeys.CentralHeap).NodeDiedAsync(silo);
        }
        catch (Exception e)
        {
            // Another silo reports the same death; a rebuilt central heap leaves dead nodes out anyway.
            LogReportFailed(_logger, e, name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Silo {Name} ({Silo}) declared dead; reporting to the central heap")]
    private static partial void LogDeath(ILogger logger, string name, SiloAddress silo);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Reporting the death of silo {Name} to the central heap failed")]
    private static partial void LogReportFailed(ILogger logger, Exception exception, string name);
}
