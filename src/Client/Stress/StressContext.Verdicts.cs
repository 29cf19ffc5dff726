using System.Collections.Concurrent;
using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

// What a failed call means for the objects it carried: the node is gone (lost), alive (retry or unsettled), or no
// verdict in time (an error). See StressContext.cs.
public sealed partial class StressContext
{
    /// <summary>How long a call that fails with a transport error is retried while its node is still listed as live.</summary>
    private static readonly TimeSpan SuspectWindow = TimeSpan.FromSeconds(45);

    private readonly ConcurrentDictionary<string, bool> _gone = new();

    public IReadOnlyCollection<string> GoneNodes => [.. _gone.Keys.Order()];

    /// <summary>Refreshes the live node table; true when <paramref name="node"/> is no longer in it (it died).</summary>
    public async Task<bool> IsGoneAsync(string node)
    {
        if (_gone.ContainsKey(node)) return true;
        try
        {
            NodeInfo[] nodes = await Connection.NodesAsync();
            if (nodes.Length > 0) _nodes = nodes;
        }
        catch (Exception e) when (IsTransient(e))
        {
            return false; // the central heap is moving: no verdict yet
        }
        if (_nodes.Any(n => n.Name == node)) return false;
        _gone[node] = true;
        return true;
    }

    public static bool IsTransient(Exception e) =>
        e is OrleansException or TimeoutException or OperationCanceledException or IOException or ObjectDisposedException
        || (e is ClusterHeapException c && c.Error.Kind == HeapErrorKind.NodeGone);

    /// <summary>
    /// Groups <paramref name="objects"/> by owner node and runs <paramref name="body"/> once per owner, in
    /// parallel. Objects whose owner is gone are lost. After a transport failure (a silo died: the owner,
    /// or the gateway that was forwarding the call) the owner is checked: once membership declares it dead
    /// its objects are lost; while it answers, an <paramref name="idempotent"/> body is run again, and a
    /// body that is not leaves its objects interrupted.
    /// </summary>
    private async Task ForEachOwnerAsync(IReadOnlyList<Obj> objects, bool idempotent, Func<IHeapNodeGrain, List<Obj>, Task> body)
    {
        var groups = new Dictionary<IHeapNodeGrain, List<Obj>>();
        foreach (Obj o in objects)
        {
            (IHeapNodeGrain? node, HeapError? _) = await Connection.Router.TryResolveAsync(o.Pointer);
            if (node is null || _gone.ContainsKey(node.GetPrimaryKeyString()))   // the router may not know yet what the watcher does
            {
                LoseObjects(1);
                continue;
            }
            if (!groups.TryGetValue(node, out List<Obj>? list)) groups[node] = list = [];
            list.Add(o);
        }
        await Task.WhenAll(groups.Select(async g =>
        {
            string name = g.Key.GetPrimaryKeyString();
            var deadline = Stopwatch.StartNew();
            while (true)
            {
                try
                {
                    await body(g.Key, g.Value);
                    return;
                }
                catch (Exception e) when (IsTransient(e))
                {
                    switch (await VerdictAsync(g.Key, name, deadline))
                    {
                        case Verdict.Gone:
                            LoseObjects(g.Value.Count);
                            return;
                        case Verdict.Alive when idempotent:
                            continue;
                        case Verdict.Alive:
                            Interlocked.Add(ref _unsettled, g.Value.Count);
                            return;
                        default:
                            Error($"call to {name}: {e.GetType().Name}: {e.Message} (and the node neither answers nor is declared dead after {SuspectWindow.TotalSeconds:0} s)");
                            return;
                    }
                }
            }
        }));
    }

    private enum Verdict { Gone, Alive, Unknown }

    /// <summary>Waits until <paramref name="node"/> is declared dead or answers a ping again (bounded by the suspect window).</summary>
    private async Task<Verdict> VerdictAsync(IHeapNodeGrain node, string name, Stopwatch since)
    {
        while (since.Elapsed < SuspectWindow)
        {
            if (await IsGoneAsync(name)) return Verdict.Gone;
            try
            {
                await node.PingAsync().WaitAsync(TimeSpan.FromSeconds(2));
                // It answers; but a dying silo may still answer for a moment, so ask membership once more.
                return await IsGoneAsync(name) ? Verdict.Gone : Verdict.Alive;
            }
            catch (Exception e) when (IsTransient(e))
            {
                await Task.Delay(200);
            }
        }
        return Verdict.Unknown;
    }

    /// <summary>Waits a little before another attempt; false (and an error) once the suspect window is over.</summary>
    private Task<bool> RetryAsync(Stopwatch since, string what, Exception e) => RetryAsync(since, what, $"{e.GetType().Name}: {e.Message}");

    /// <summary>As above, for a failure that came back as a reply (the central heap unavailable).</summary>
    private async Task<bool> RetryAsync(Stopwatch since, string what, string failure)
    {
        if (since.Elapsed > SuspectWindow)
        {
            Error($"{what}: {failure}");
            return false;
        }
        await Task.Delay(200);
        return true;
    }
}
