using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Client.Connect;

/// <summary>
/// This connection's lease on its roots (docs/DESIGN.md §12). The cluster knows the client by its Orleans connection's
/// grain id, which every call it makes carries as its source: each pointer a malloc returns is rooted for it on the
/// object's node with nothing added to the call. The lease is renewed at the central heap — one call per period for
/// the whole cluster, not one per node — and the first renewal tells the client its id (<see cref="Id"/>, what the
/// shell's root and release name). Closing the connection ends the lease; a client that dies stops renewing, and its
/// roots go at the first cycle after the lease runs out.
/// </summary>
public sealed class ClientRootLease : IAsyncDisposable
{
    private readonly CancellationTokenSource _stop = new();
    private Task? _renewing;

    /// <summary>The client id: this connection's grain id, as the cluster sees it (default before <see cref="StartAsync"/>).</summary>
    public GrainId Id => Lease?.Client ?? default;

    /// <summary>The last lease the central heap granted (null before the first renewal).</summary>
    public ClientLease? Lease { get; private set; }

    /// <summary>Takes the first lease (before any malloc can root anything) and keeps renewing it in the background.</summary>
    public async Task StartAsync(IGrainFactory grains)
    {
        ICentralGcGrain central = grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
        Lease = await central.RenewClientAsync();
        _renewing = RenewAsync(central);
    }

    private async Task RenewAsync(ICentralGcGrain central)
    {
        while (!_stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(Lease?.RenewEvery ?? TimeSpan.FromSeconds(10), _stop.Token);
                Lease = await central.RenewClientAsync();
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

    /// <summary>Stops renewing (the lease itself runs on until <see cref="EndAsync"/> or its term).</summary>
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
            await grains.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap).EndClientAsync().WaitAsync(TimeSpan.FromSeconds(5));
        }
        catch (Exception)
        {
            // Best effort: the lease runs out anyway.
        }
    }
}
