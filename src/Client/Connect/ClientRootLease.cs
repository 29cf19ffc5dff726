using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Client.Connect;

/// <summary>
/// This connection's identity as a holder of roots (docs/DESIGN.md §12): every call it makes carries its client id in
/// Orleans' RequestContext (an outgoing call filter), so each pointer a malloc returns is rooted for it on the object's
/// node; and it renews its lease on those roots at the central heap — one call per period for the whole cluster, not
/// one per node. Closing the connection ends the lease; a client that dies stops renewing, and its roots go at the
/// first cycle after the lease runs out.
/// </summary>
public sealed class ClientRootLease : IOutgoingGrainCallFilter, IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _renewing;

    /// <summary>The client id: machine, process and a fresh suffix, so two connections of one process are two clients.</summary>
    public string Id { get; } = $"{Environment.MachineName}/{Environment.ProcessId}/{Guid.NewGuid().ToString("n")[..8]}";

    /// <summary>The last lease the central heap granted (null before the first renewal).</summary>
    public ClientLease? Lease { get; private set; }

    /// <inheritdoc/>
    public Task Invoke(IOutgoingGrainCallContext context)
    {
        RequestContext.Set(GcKeys.Client, Id);
        return context.Invoke();
    }

    /// <summary>Takes the first lease (before any malloc can root anything) and keeps renewing it in the background.</summary>
    public async Task StartAsync(IGrainFactory grains)
    {
        ICentralGcGrain central = grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
        Lease = await central.RenewClientAsync(Id);
        _renewing = RenewAsync(central);
    }

    private async Task RenewAsync(ICentralGcGrain central)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Lease?.RenewEvery ?? TimeSpan.FromSeconds(10), _stop.Token);
                Lease = await central.RenewClientAsync(Id);
            }
            catch (OperationCanceledException)
            {
                return;
            }
            catch (Exception)
            {
                // The central heap is moving or a silo is down: the next period tries again (the lease has slack for it).
            }
        }
    }

    /// <summary>Ends the lease (best effort): the roots go at the next cycle.</summary>
    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        if (_renewing is not null)
        {
            await _renewing;
        }

        _stop.Dispose();
    }

    /// <summary>Tells the central heap this client is done, so its roots go at the next cycle rather than after the lease.</summary>
    public async Task EndAsync(IGrainFactory grains)
    {
        try
        {
            await grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap).EndClientAsync(Id).WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // Best effort: the lease runs out anyway.
        }
    }
}
