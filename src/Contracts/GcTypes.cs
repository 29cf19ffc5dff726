using System.Globalization;
using Orleans.Runtime;

namespace ClusterHeap.Contracts;

/// <summary>How a cluster cycle runs (docs/DESIGN.md §12): the node heap's GcMode (Heap/GcConcurrent.cs), for the wire.</summary>
[GenerateSerializer, Alias("ClusterHeap.GcMode")]
public enum GcMode
{
    /// <summary>Every node's mutators stop for the whole mark.</summary>
    StopTheWorld = 0,

    /// <summary>
    /// Two short pauses: the first stops every node and begins each one's concurrent session (roots shaded, write
    /// barrier on, allocation born marked); nodes then mark in steps while mutators run; the second stops every node
    /// again for mark termination and the finish.
    /// </summary>
    Concurrent = 1,
}

/// <summary>
/// One cluster cycle's orders to a node: the live nodes (where foreign marks go, by slot, with the generation a
/// pointer must carry), the clients whose leases are live, those whose leases ended (their roots go), and whether a
/// client that held a lease and is not live now may be dropped too (only once the coordinator has been up for a whole
/// lease term: a new activation knows no client until they renew). A client is its connection's grain id.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcMarkPlan")]
public sealed record GcMarkPlan(
    [property: Id(0)] long Cycle,
    [property: Id(1)] int[] Slots,
    [property: Id(2)] ushort[] Generations,
    [property: Id(3)] string[] Nodes,
    [property: Id(4)] GrainId[] LiveClients,
    [property: Id(5)] GrainId[] DroppedClients,
    [property: Id(6)] bool DropUnknownClients,
    [property: Id(7)] GcMode Mode);

/// <summary>
/// A node's mark counters for Mattern's four-counter termination: batches of foreign marks it sent to other nodes and
/// batches it received and finished (a batch counts as received only after everything it led to was sent).
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcMarkCounters")]
public readonly record struct GcMarkCounters(
    [property: Id(0)] long Cycle,
    [property: Id(1)] long Sent,
    [property: Id(2)] long Received,
    [property: Id(3)] string? Failure,
    [property: Id(4)] long Marked,
    [property: Id(5)] bool Done);

/// <summary>One node's part of a finished cluster cycle.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.GcNodeCycle")]
public sealed record GcNodeCycle(
    [property: Id(0)] string Node,
    [property: Id(1)] long HeapLiveBefore,
    [property: Id(2)] long HeapLiveAfter,
    [property: Id(3)] long Marked,
    [property: Id(4)] long MarkedObjects,
    [property: Id(5)] long Dangling,
    [property: Id(6)] long Interior,
    [property: Id(7)] long Foreign,
    [property: Id(8)] long Roots,
    [property: Id(9)] int ClientsDropped,
    [property: Id(10)] double MarkMs,
    [property: Id(11)] GcNodeParts? Parts = null);

/// <summary>
/// One cluster cycle, as the central heap's silo logs it and the client prints it (<see cref="Trace"/>).
/// <code>
///   gc 7 @12.345s 0%: 0.41+3.2+0.88 ms clock, 0.41+0/3.2/0+0.88 ms cpu, 96->96->64 MB, 128 MB goal, 3 nodes
///        │  │       │   stop  mark  restart          ↑ as clock: the mark ran on every node at once
///        │  │       │   (concurrent: pause 1 = the longest node's cut, the mark beside the mutators, pause 2)
///        │  │       └ GC CPU fraction since the first cycle       live before → live at the end → marked
///        │  └ since the coordinator's activation
///        └ cycle number (cluster-wide)
/// </code>
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.ClusterGcCycle")]
public sealed record ClusterGcCycle(
    [property: Id(0)] long Number,
    [property: Id(1)] bool Forced,
    [property: Id(2)] double SinceStartSeconds,
    [property: Id(3)] double GcCpuPercent,
    [property: Id(4)] double StopMs,
    [property: Id(5)] double MarkMs,
    [property: Id(6)] double RestartMs,
    [property: Id(7)] long HeapLiveBefore,
    [property: Id(8)] long HeapLiveAfter,
    [property: Id(9)] long Marked,
    [property: Id(10)] long Goal,
    [property: Id(11)] long Batches,
    [property: Id(12)] long Waves,
    [property: Id(13)] GcMode Mode,
    [property: Id(14)] GcNodeCycle[] PerNode,
    [property: Id(15)] GcCycleParts? Parts = null)
{
    /// <summary>
    /// The time mutators were stopped, in milliseconds: stop + mark + restart for a stop-the-world cycle; the two pauses
    /// (the longest node's own cut; termination and finish) for a concurrent one, whose mark runs beside the mutators.
    /// </summary>
    public double PauseMs => Mode == GcMode.Concurrent ? StopMs + RestartMs : StopMs + MarkMs + RestartMs;

    /// <summary>Objects marked on every node.</summary>
    public long MarkedObjects => PerNode.Sum(n => n.MarkedObjects);

    /// <summary>Go's <c>GODEBUG=gctrace=1</c> line, with nodes in place of Ps.</summary>
    public string Trace
    {
        get
        {
            CultureInfo inv = CultureInfo.InvariantCulture;
            static string Ms(double ms) => ms.ToString(ms < 10 ? "0.###" : "0.#", CultureInfo.InvariantCulture);
            static long Mb(long b) => b >> 20;
            return string.Create(inv,
                $"gc {Number} @{SinceStartSeconds:0.000}s {GcCpuPercent:0}%: {Ms(StopMs)}+{Ms(MarkMs)}+{Ms(RestartMs)} ms clock, " +
                $"{Ms(StopMs)}+0/{Ms(MarkMs)}/0+{Ms(RestartMs)} ms cpu, {Mb(HeapLiveBefore)}->{Mb(HeapLiveAfter)}->{Mb(Marked)} MB, " +
                $"{(Goal == long.MaxValue ? "-" : Mb(Goal).ToString(inv))} MB goal, {PerNode.Length} nodes{(Forced ? " (forced)" : "")}");
        }
    }
}

/// <summary>The cluster collector's state: settings, pacer, counts and the recent cycles' traces.</summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.ClusterGcStatus")]
public sealed record ClusterGcStatus(
    [property: Id(0)] GcMode Mode,
    [property: Id(1)] int GcPercent,
    [property: Id(2)] long Goal,
    [property: Id(3)] long Marked,
    [property: Id(4)] long NumGC,
    [property: Id(5)] long Aborted,
    [property: Id(6)] string? LastAbort,
    [property: Id(7)] int LiveClients,
    [property: Id(8)] ClusterGcCycle[] Recent,
    [property: Id(9)] string Coordinator);

/// <summary>
/// A client's lease on its roots: renew before <see cref="Expires"/>, every <see cref="RenewEvery"/>. <see cref="Client"/>
/// is the client as the cluster knows it: its connection's grain id, the source of every call it makes, under which
/// each malloc it makes is rooted.
/// </summary>
[GenerateSerializer, Immutable, Alias("ClusterHeap.ClientLease")]
public sealed record ClientLease(
    [property: Id(0)] GrainId Client,
    [property: Id(1)] DateTime Expires,
    [property: Id(2)] TimeSpan RenewEvery);
