using System.Text.Json.Serialization;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Web;

// What the live heap map sends to the page, one server-sent event per frame. A frame carries, for each
// node, only what changed since the frame before: spans added or changed ("up"), spans gone ("rm", by
// first page), the stats when they moved, and the reason when the node died. A new page first gets a
// full frame (every span of every node), then the same changes as every other page.

/// <summary>One frame: the cluster line and the nodes that changed.</summary>
public sealed record MapFrame(
    [property: JsonPropertyName("seq")] long Seq,
    [property: JsonPropertyName("full")] bool Full,
    [property: JsonPropertyName("at")] DateTimeOffset At,
    [property: JsonPropertyName("cluster")] ClusterLine? Cluster,
    [property: JsonPropertyName("error")] string? Error,
    [property: JsonPropertyName("nodes")] NodeChange[] Nodes);

/// <summary>The cluster's sums over the live nodes, and the central heap's limit and leases.</summary>
public sealed record ClusterLine(
    [property: JsonPropertyName("nodes")] int Nodes,
    [property: JsonPropertyName("heapAlloc")] long HeapAlloc,
    [property: JsonPropertyName("heapInuse")] long HeapInuse,
    [property: JsonPropertyName("heapSys")] long HeapSys,
    [property: JsonPropertyName("heapReleased")] long HeapReleased,
    [property: JsonPropertyName("mallocs")] long Mallocs,
    [property: JsonPropertyName("frees")] long Frees,
    [property: JsonPropertyName("granted")] long Granted,
    [property: JsonPropertyName("memoryLimit")] long? MemoryLimit,
    [property: JsonPropertyName("leases")] int Leases);

/// <summary>
/// One node's changes. <see cref="Reset"/>: drop everything drawn for this node first (a full frame, or
/// a node restarted with a new generation). Spans are arrays <c>[page, pages, class, objects, live,
/// state, owner]</c>, page = first page's index from the arena start.
/// </summary>
public sealed record NodeChange(
    [property: JsonPropertyName("name")] string Name,
    [property: JsonPropertyName("slot")] int Slot,
    [property: JsonPropertyName("generation")] int Generation,
    [property: JsonPropertyName("arenaStart")] string ArenaStart,
    [property: JsonPropertyName("pageSize")] int PageSize,
    [property: JsonPropertyName("usedPages")] long UsedPages,
    [property: JsonPropertyName("reset")] bool Reset,
    [property: JsonPropertyName("dead")] string? Dead,
    [property: JsonPropertyName("stats")] NodeStats? Stats,
    [property: JsonPropertyName("up")] object[][] Up,
    [property: JsonPropertyName("rm")] long[] Removed);

/// <summary>How the page draws a span.</summary>
public enum SpanState
{
    /// <summary>In use by this node (an mcache or mcentral).</summary>
    InUse = 0,
    /// <summary>In use, lent to another node's mcache.</summary>
    Leased = 1,
    /// <summary>Free, still committed.</summary>
    Free = 2,
    /// <summary>Free and returned to the OS.</summary>
    Released = 3,
    /// <summary>In use by this node, left to sweep by its last collection.</summary>
    Unswept = 4,
}

/// <summary>One span as the page draws it (compared frame to frame to find what changed).</summary>
public readonly record struct SpanCell(long Page, long Pages, int SizeClass, int Objects, int Live, SpanState State, string Owner)
{
    /// <summary>The span as it travels.</summary>
    public object[] ToWire() => [Page, Pages, SizeClass, Objects, Live, (int)State, Owner];
}
