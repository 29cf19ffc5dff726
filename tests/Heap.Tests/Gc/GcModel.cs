namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// The client's model of a collected heap: the objects it allocated, what it wrote into their pointer words, its
/// roots, and reachability computed from those alone — by address against the objects it believes live, as Go's
/// semantics say (an interior pointer keeps its object; a pointer into a tiny block keeps the whole block; a word
/// that names no live object is no edge). Independent of the collector's code.
/// </summary>
internal sealed unsafe class GcModel
{
    /// <summary>
    /// One object: <c>Extent</c> is the range a pointer may land in and keep it alive (its slot for small objects,
    /// its pages for large ones, its own bytes for a tiny object); <c>PointerWords</c> the words the bitmap calls pointers.
    /// </summary>
    public sealed record Obj(nuint Base, long Size, long Extent, bool Noscan, bool Tiny, int[] PointerWords, ulong Cookie)
    {
        public nuint Block => Base & ~(nuint)15;
    }

    public readonly Dictionary<nuint, Obj> Live = [];
    public readonly List<nuint> Dead = [];                      // bases of objects freed or reclaimed: dangling targets

    /// <summary>The generation a pointer word must carry in its top 16 bits to lead anywhere (0: raw addresses).</summary>
    public ulong Tag { get; init; }

    /// <summary>The live object whose extent holds <paramref name="word"/>, if the word is a raw arena address.</summary>
    public Obj? Resolve(ulong word, Obj[] sorted)
    {
        if (word == 0 || (word >> 48) != Tag) return null;
        nuint p = (nuint)(word & ((1UL << 48) - 1));
        int lo = 0, hi = sorted.Length - 1, found = -1;
        while (lo <= hi)
        {
            int mid = (lo + hi) >>> 1;
            if (sorted[mid].Base <= p)
            {
                found = mid;
                lo = mid + 1;
            }
            else
            {
                hi = mid - 1;
            }
        }
        if (found < 0) return null;
        Obj o = sorted[found];
        return p < o.Base + (nuint)o.Extent ? o : null;
    }

    /// <summary>Objects reachable from <paramref name="roots"/>, plus the tiny-block mates of reachable tiny objects.</summary>
    public HashSet<nuint> Reachable(IEnumerable<ulong> roots)
    {
        Obj[] sorted = [.. Live.Values.OrderBy(o => o.Base)];
        var byBlock = Live.Values.Where(o => o.Tiny).GroupBy(o => o.Block).ToDictionary(g => g.Key, g => g.ToList());
        var seen = new HashSet<nuint>();
        var work = new Stack<Obj>();
        void Shade(ulong w)
        {
            Obj? o = Resolve(w, sorted);
            if (o == null) return;
            if (o.Tiny)
            {
                foreach (Obj mate in byBlock[o.Block])
                {
                    if (seen.Add(mate.Base)) work.Push(mate);
                }
            }
            else if (seen.Add(o.Base))
            {
                work.Push(o);
            }
        }
        foreach (ulong r in roots) Shade(r);
        while (work.Count > 0)
        {
            Obj o = work.Pop();
            foreach (int i in o.PointerWords) Shade(((ulong*)o.Base)[i]);
        }
        return seen;
    }
}
