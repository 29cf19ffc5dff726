using System.Text.Json;
using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap gc [--log] [--json]`: runs one cluster collection and prints its gctrace line (Go's GODEBUG=gctrace=1
/// format, nodes in place of Ps), or with --log prints the coordinator's recent lines and its state instead of running
/// one. --json prints the same as one JSON document. Exit 1 when the cycle aborted (a node or the coordinator died).
/// </summary>
public static class GcCommand
{
    private static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    public static Command Create(CliContext cli)
    {
        Option<bool> log = new("--log") { Description = "print the recent cycles' gctrace lines and the collector's state; run no cycle" };
        Option<bool> json = new("--json") { Description = "print the cycle (or with --log the state and recent cycles) as one JSON document" };
        Command command = CommandTree.New("gc",
            "Run a garbage collection across the cluster and print its gctrace line; --log prints the recent ones.",
            "clusterheap gc $(scripts/cluster.sh connect)", "clusterheap gc --log --json $(scripts/cluster.sh connect)")
            .With(log, json);
        command.SetAction((r, _) => Program.WithClusterAsync(cli.Connection.Read(r), cli, async c =>
        {
            ICentralGcGrain gc = c.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);
            if (r.Get(log))
            {
                ClusterGcStatus status = await gc.GetGcStatusAsync();
                if (r.Get(json))
                {
                    cli.Output.WriteLine(JsonSerializer.Serialize(new
                    {
                        mode = status.Mode.ToString(),
                        gogc = status.GcPercent,
                        goal = status.Goal == long.MaxValue ? (long?)null : status.Goal,
                        marked = status.Marked,
                        numGc = status.NumGC,
                        aborted = status.Aborted,
                        lastAbort = status.LastAbort,
                        liveClients = status.LiveClients,
                        coordinator = status.Coordinator,
                        cycles = status.Recent.Select(Json),
                    }, JsonOptions));
                    return ExitCodes.Ok;
                }

                foreach (ClusterGcCycle cycle in status.Recent)
                {
                    cli.Output.WriteLine(cycle.Trace);
                }

                cli.Output.WriteLine($"{status.NumGC} cycles, {status.Aborted} aborted; GOGC {(status.GcPercent < 0 ? "off" : status.GcPercent)}; coordinator {status.Coordinator}");
                return ExitCodes.Ok;
            }

            ClusterGcCycle done;
            try
            {
                done = await gc.CollectAsync();
            }
            catch (ClusterHeapException e)
            {
                cli.Error.WriteLine($"error: {e.Message}");
                return ExitCodes.Failed;
            }

            cli.Output.WriteLine(r.Get(json) ? JsonSerializer.Serialize(Json(done), JsonOptions) : done.Trace);
            return ExitCodes.Ok;
        }));
        return command;
    }

    private static object Json(ClusterGcCycle c) => new
    {
        number = c.Number,
        forced = c.Forced,
        trace = c.Trace,
        pauseMs = c.PauseMs,
        stopMs = c.StopMs,
        markMs = c.MarkMs,
        restartMs = c.RestartMs,
        heapLiveBefore = c.HeapLiveBefore,
        heapLiveAfter = c.HeapLiveAfter,
        marked = c.Marked,
        markedObjects = c.MarkedObjects,
        goal = c.Goal == long.MaxValue ? (long?)null : c.Goal,
        batches = c.Batches,
        waves = c.Waves,
        nodes = c.PerNode,
    };
}
