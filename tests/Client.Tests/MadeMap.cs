using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>Made-up heap maps for the renderers' tests (MapTests, UnsweptMapTests): rows laid end to end from <see cref="Start"/>.</summary>
internal static class MadeMap
{
    /// <summary>Where the first row starts: a slot-4 arena address.</summary>
    public const ulong Start = 0x00c004100000;
    public const int Page = 8192;

    /// <summary>Node <paramref name="node"/> in arena slot <paramref name="slot"/> with <paramref name="rows"/> one after another, in a 1 GiB arena.</summary>
    public static HeapMap Of(string node, int slot, params HeapMapRow[] rows)
    {
        ulong used = Start;
        var placed = new List<HeapMapRow>();
        foreach (HeapMapRow r in rows)
        {
            placed.Add(r with { Start = used });
            used += (ulong)(r.Pages * Page);
        }
        return new HeapMap(node, slot, Start, used, Start + (1UL << 30), Page, [.. placed]);
    }
}
