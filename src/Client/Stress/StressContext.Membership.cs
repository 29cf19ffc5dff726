using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Client.Stress;

// The run's view of membership, and the bound it puts on every data-path call. A watcher polls Orleans' membership
// (a killed silo is declared dead within about two seconds, ClusterHeapOptions.ProbeTimeout) and wakes every call
// that was out when a node died. Without it a worker waits on the reply of a call that the dead silo carried (as owner,
// or as the gateway that forwarded it) until Orleans' response timeout (30 s), longer than CI's whole run: that was
// the stall after a SIGKILL. With it such a call gets CutOffGrace more to answer and then counts as cut off, and the
// verdict code (StressContext.Verdicts.cs) settles its objects by membership: lost on the dead node, retried or
// unsettled on a live one.
public sealed partial class StressContext
{
    /// <summary>How long a call that was out when a node died may still answer before it counts as cut off.</summary>
    private static readonly TimeSpan CutOffGrace = TimeSpan.FromSeconds(2);

    /// <summary>How often the watcher reads the node list.</summary>
    private static readonly TimeSpan WatchEvery = TimeSpan.FromMilliseconds(250);

    /// <summary>How long one read of membership may take before the watcher asks again.</summary>
    private static readonly TimeSpan WatchTimeout = TimeSpan.FromSeconds(2);

    private TaskCompletionSource _nextDeath = NewDeath();

    /// <summary>Completes when the watcher next sees a node's silo leave membership; take it before starting a call.</summary>
    private Task NextDeath => Volatile.Read(ref _nextDeath).Task;

    private static TaskCompletionSource NewDeath() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// Watches membership until <paramref name="stop"/>: a node whose silo is no longer active is gone (its objects
    /// are lost, workers move off it), and every call out at that moment is woken (<see cref="BoundedAsync{T}"/>).
    /// It reads Orleans' own membership (IManagementGrain, answered by the gateway silo), not the central heap's
    /// node list: the central heap may have lived on the dead silo, and then it answers nobody until it has moved.
    /// </summary>
    public async Task WatchMembershipAsync(CancellationToken stop)
    {
        IManagementGrain management = Connection.Client.GetGrain<IManagementGrain>(0);
        using var timer = new PeriodicTimer(WatchEvery);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                Dictionary<SiloAddress, SiloStatus> active;
                try
                {
                    active = await management.GetHosts(onlyActive: true).WaitAsync(WatchTimeout, stop);
                }
                catch (Exception e) when (IsTransient(e) && !stop.IsCancellationRequested)
                {
                    continue; // the gateway is dying: ask again through another
                }
                NodeInfo[] nodes = _nodes;
                NodeInfo[] died = [.. nodes.Where(n => !active.ContainsKey(n.Silo))];
                if (died.Length == 0 || died.Length == nodes.Length) continue;
                _nodes = [.. nodes.Where(n => active.ContainsKey(n.Silo))];
                foreach (NodeInfo node in died) _gone[node.Name] = true;
                Interlocked.Exchange(ref _nextDeath, NewDeath()).TrySetResult();
            }
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
    }

    /// <summary>
    /// Awaits <paramref name="call"/>, started after <paramref name="death"/> was taken from <see cref="NextDeath"/>.
    /// When a node dies while it is out and it has not answered <see cref="CutOffGrace"/> later, it throws
    /// <see cref="TimeoutException"/> (transient): the caller's verdict code decides what its objects are.
    /// </summary>
    private static async Task<T> BoundedAsync<T>(Task<T> call, Task death)
    {
        if (await Task.WhenAny(call, death) == call) return await call;
        if (await Task.WhenAny(call, Task.Delay(CutOffGrace)) == call) return await call;
        _ = call.ContinueWith(static t => _ = t.Exception, CancellationToken.None,
            TaskContinuationOptions.OnlyOnFaulted | TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
        throw new TimeoutException($"the call was out when a node died and did not answer within {CutOffGrace.TotalSeconds:0} s");
    }
}
