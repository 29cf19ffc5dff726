using System.Diagnostics;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// graph: the collector's workload (docs/DESIGN.md §12). In rounds: every worker allocates 64-byte scan objects through
/// the mcaches of every node in turn (so its pointers cross nodes), links new and old objects through their pointer
/// words (words 1..6; words 0 and 7 hold the cookie), rewires a few links, keeps a random part of its objects rooted and
/// releases the rest — no explicit free. Then one forced cluster cycle, and every worker reads each object its model
/// says is reachable and checks its cookie; the objects it says are not are forgotten (the cycle reclaimed them).
/// At the end a last cycle, every node's sweep finished, and each node's HeapObjects must equal the model's reachable
/// count there exactly. Reports the live bytes each node marked (its median over the counted cycles) and the cycles'
/// pauses and where they went, medians and the slowest cycle's parts (GraphPauses.cs). With <c>--live BYTES</c> the reachable set stays near that size: past its share, a
/// worker retires its oldest objects before a round (unroots them and clears every link to them), and the next cycle
/// reclaims them. Cycles the pacer starts may run at any point of a round, so a round touches only what is reachable:
/// what its links overwrite, and the retired objects while the links to them are cleared, stay pinned (rooted) until
/// it is done, and what retiring left unreachable is forgotten before the round's first link.
/// </summary>
public sealed class GraphWorkload(StressContext context) : Workload(context)
{
    private const int Links = 6;                 // pointer words 1..6 (the cookie is in the first and last words)

    private sealed class Node(Obj obj)
    {
        public Obj Obj { get; } = obj;
        public HeapPointer[] Links { get; } = new HeapPointer[GraphWorkload.Links];
        public bool Rooted { get; set; } = true;     // a malloc roots its pointer for this client
    }

    private Dictionary<HeapPointer, Node>[] _models = [];
    private XorShift[] _rng = [];
    private readonly List<ClusterGcCycle> _seen = [];   // the forced cycles of the timed phase past warm-up, for their parts; lock it
    private readonly List<ClusterGcCycle> _paced = [];  // cycles the pacer started meanwhile (their pauses count too); lock _seen
    private GcNodeCycle[] _final = [];                   // the teardown's first cycle, per node: the run's live set
    private long[] _unreached = [];                     // per worker: objects its last check found unreachable (--live's feedback)
    private long _cycles, _reclaimed, _checked, _startCycle, _warmup;
    private double _capScale = 1;                       // --live's feedback from the cycles' marked bytes; lock _seen
    private int _retired;                               // 1 when a worker retired objects this round (the cap binds)
    private string _exact = "not checked";

    private int NewPerRound => Options.Slots > 0 ? Options.Slots : 200;

    /// <summary>--size (at least 64 B: the cookie's two words and six pointer words), else 64 B.</summary>
    private long ObjectSize => Math.Max(64, Options.Size);

    private ICentralGcGrain Gc => Ctx.Connection.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

    public override string Shape => $"{NewPerRound} new {ObjectSize} B scan objects per worker per round, {Links} linked pointer words each, a forced cycle per round";

    public override async Task SetupAsync(int workers)
    {
        _rng = [.. Enumerable.Range(0, workers).Select(w => XorShift.ForWorker(Options.Seed, w))];
        _models = [.. Enumerable.Range(0, workers).Select(_ => new Dictionary<HeapPointer, Node>())];
        _unreached = new long[workers];
        _startCycle = (await Gc.GetGcStatusAsync()).NumGC;
    }

    public override async Task RunAsync(Latency[] latencies)
    {
        int round = 0;
        while (!Ctx.Stopping)
        {
            int r = round++;
            await Task.WhenAll(latencies.Select((l, w) => Guarded(() => MutateAsync(w, r, l))));
            await CollectAsync();
            await Task.WhenAll(latencies.Select((_, w) => Guarded(() => CheckAsync(w))));
        }
    }

    private async Task CollectAsync()
    {
        ClusterGcCycle cycle = await Gc.CollectAsync();
        lock (_seen)
        {
            _final = cycle.PerNode;
            if (Interlocked.Exchange(ref _retired, 0) == 1 && cycle.Marked > 0)
            {
                // The cap binds: steer it by what the cycle found reachable (retiring cuts more than the retired objects).
                _capScale = Math.Clamp(_capScale * Options.Live / cycle.Marked, 0.5, 4);
            }

            if (WarmUp(cycle))
            {
                _warmup++;                          // --live: the reachable set is still growing towards its size
                return;
            }

            _seen.Add(cycle);
        }
    }

    /// <summary>--live: a cycle that marked less than 90 % of the size is warm-up (the reachable set still grows), not counted.</summary>
    private bool WarmUp(ClusterGcCycle cycle) => Options.Live > 0 && cycle.Marked < Options.Live * 9 / 10;

    /// <summary>--live: this worker's share, in objects.</summary>
    private long LiveCap(int workers)
    {
        if (Options.Live <= 0)
        {
            return long.MaxValue;
        }

        double scale;
        lock (_seen)
        {
            scale = _capScale;
        }

        return Math.Max(NewPerRound, (long)(scale * Options.Live / ObjectSize / workers));
    }

    /// <summary>
    /// Makes room for a round's new objects under --live: the oldest objects past the share leave the model — every link
    /// to them from the objects that stay is cleared and their roots released — so they are garbage for the next cycle.
    /// </summary>
    private async Task RetireAsync(int w, Dictionary<HeapPointer, Node> model)
    {
        // What stays reachable after the round: the model, the new objects, less what the last round left unreachable.
        long excess = model.Count + NewPerRound - _unreached[w] - LiveCap(_models.Length);
        if (excess <= 0)
        {
            return;
        }

        Interlocked.Exchange(ref _retired, 1);

        var retired = new HashSet<HeapPointer>(model.Values.OrderBy(n => n.Obj.Seq).Take((int)excess).Select(n => n.Obj.Pointer));
        var clears = new List<(Node From, int Word)>();
        foreach (Node n in model.Values)
        {
            if (retired.Contains(n.Obj.Pointer))
            {
                continue;
            }

            for (int i = 0; i < Links; i++)
            {
                if (!n.Links[i].IsNull && retired.Contains(n.Links[i]))
                {
                    clears.Add((n, i));
                }
            }
        }

        // The retired objects are pinned (rooted) while the links to them are cleared: an object that stays in the model
        // but is reachable only through a retired one would otherwise be garbage between two clears, and a cycle the
        // pacer runs meanwhile frees it before a later clear writes into it.
        Node[] leaving = [.. retired.Select(p => model[p])];
        await RootsAsync(leaving.Where(n => !n.Rooted), add: true);
        foreach ((Node from, int word) in clears)
        {
            await LinkAsync(from, word, HeapPointer.Null);
            from.Links[word] = HeapPointer.Null;
        }

        await RootsAsync(leaving, add: false);       // each rooted once: by its own root or by its pin
        foreach (HeapPointer p in retired)
        {
            model.Remove(p);
            Interlocked.Increment(ref _reclaimed);
        }

        // What only the retired objects reached is garbage now: forgotten before the round touches anything.
        Forget(model, Reachable(model));
    }

    private async Task MutateAsync(int w, int round, Latency latency)
    {
        Dictionary<HeapPointer, Node> model = _models[w];
        XorShift rng = _rng[w];
        long start = Stopwatch.GetTimestamp();
        await RetireAsync(w, model);
        long[] sizes = [.. Enumerable.Repeat(ObjectSize, NewPerRound)];
        (List<Obj> fresh, bool _) = await Ctx.MallocAsync(w, round, sizes, ObjectKind.Pointer);
        List<Node> old = [.. model.Values];
        foreach (Obj o in fresh)
        {
            model[o.Pointer] = new Node(o);
        }

        // The round's links are chosen first, against the model: every new object to old ones and old ones to new ones,
        // and a few old links rewired (some to nil). Every object the model holds is reachable now; what a link
        // overwrites is pinned (rooted) until the round ends, so nothing the round writes into or links to becomes
        // garbage before it does — a cycle the pacer starts in the middle of the round may run at any point of it.
        List<Node> all = [.. model.Values];
        var writes = new List<(Node From, int Word, HeapPointer To)>();
        var pins = new HashSet<Node>();
        void Plan(Node from, int word, HeapPointer to)
        {
            HeapPointer overwritten = from.Links[word];
            if (!overwritten.IsNull && model.TryGetValue(overwritten, out Node? target) && !target.Rooted)
            {
                pins.Add(target);
            }

            from.Links[word] = to;
            writes.Add((from, word, to));
        }

        foreach (Obj o in fresh)
        {
            Plan(model[o.Pointer], (int)rng.Between(0, Links - 1), all[(int)rng.Between(0, all.Count - 1)].Obj.Pointer);
            if (old.Count > 0)
            {
                Plan(old[(int)rng.Between(0, old.Count - 1)], (int)rng.Between(0, Links - 1), o.Pointer);
            }
        }

        for (int i = 0; i < Math.Min(old.Count, NewPerRound / 4); i++)
        {
            Node n = old[(int)rng.Between(0, old.Count - 1)];
            Plan(n, (int)rng.Between(0, Links - 1), rng.Between(0, 3) == 0 ? HeapPointer.Null : all[(int)rng.Between(0, all.Count - 1)].Obj.Pointer);
        }

        await RootsAsync(pins, add: true);
        foreach ((Node from, int word, HeapPointer to) in writes)
        {
            await LinkAsync(from, word, to);
        }

        // Keep about a quarter of the roots; release the rest (grouped by owner node), and the pins.
        Node[] release = [.. model.Values.Where(n => n.Rooted && rng.Between(0, 3) != 0)];
        await RootsAsync(release, add: false);
        foreach (Node n in release)
        {
            n.Rooted = false;
        }

        await RootsAsync(pins, add: false);
        latency.Record(start);
    }

    /// <summary>Writes <paramref name="to"/> into pointer word <paramref name="word"/> of <paramref name="from"/> (the model is the caller's).</summary>
    private async Task LinkAsync(Node from, int word, HeapPointer to)
    {
        await GcNodeOf(from.Obj.Pointer.Slot).LinkAsync(from.Obj.Pointer.Offset(8 * (word + 1)), to);
        Ctx.CountOps(1);
    }

    /// <summary>Roots (or releases) <paramref name="nodes"/> for this client, one call per owner node.</summary>
    private async Task RootsAsync(IEnumerable<Node> nodes, bool add)
    {
        foreach (IGrouping<int, Node> owner in nodes.GroupBy(n => n.Obj.Pointer.Slot))
        {
            HeapPointer[] pointers = [.. owner.Select(n => n.Obj.Pointer)];
            if (add)
            {
                await GcNodeOf(owner.Key).AddRootsAsync(Ctx.Connection.RootLease.Id, pointers);
            }
            else
            {
                await GcNodeOf(owner.Key).ReleaseRootsAsync(Ctx.Connection.RootLease.Id, pointers);
            }

            Ctx.CountOps(pointers.Length);
        }
    }

    /// <summary>Forgets the objects of <paramref name="model"/> outside <paramref name="reachable"/> (the next cycle reclaims them); returns how many.</summary>
    private long Forget(Dictionary<HeapPointer, Node> model, HashSet<HeapPointer> reachable)
    {
        HeapPointer[] gone = [.. model.Keys.Where(p => !reachable.Contains(p))];
        foreach (HeapPointer p in gone)
        {
            model.Remove(p);
            Interlocked.Increment(ref _reclaimed);
        }

        return gone.Length;
    }

    private IGcNodeGrain GcNodeOf(int slot)
    {
        NodeInfo node = Ctx.Nodes.FirstOrDefault(n => n.Slot == slot) ?? throw new InvalidOperationException($"no live node owns slot {slot}");
        return Ctx.Connection.Client.GetGrain<IGcNodeGrain>(node.Name);
    }

    private static HashSet<HeapPointer> Reachable(Dictionary<HeapPointer, Node> model)
    {
        var seen = new HashSet<HeapPointer>();
        var stack = new Stack<Node>(model.Values.Where(n => n.Rooted));
        while (stack.TryPop(out Node? n))
        {
            if (!seen.Add(n.Obj.Pointer))
            {
                continue;
            }

            foreach (HeapPointer p in n.Links)
            {
                if (!p.IsNull && model.TryGetValue(p, out Node? next))
                {
                    stack.Push(next);
                }
            }
        }

        return seen;
    }

    /// <summary>Reads each reachable object's first word (its cookie) and forgets the unreachable ones (reclaimed).</summary>
    private async Task CheckAsync(int w)
    {
        Dictionary<HeapPointer, Node> model = _models[w];
        _unreached[w] = Forget(model, Reachable(model));

        foreach (IGrouping<int, Node> owner in model.Values.GroupBy(n => n.Obj.Pointer.Slot))
        {
            Node[] nodes = [.. owner];
            IHeapNodeGrain grain = await Ctx.Connection.Router.ResolveAsync(nodes[0].Obj.Pointer);
            ReadResult[] reads = await grain.ReadBatchAsync([.. nodes.Select(n => new ReadRequest(n.Obj.Pointer, 8))]);
            for (int i = 0; i < nodes.Length; i++)
            {
                Interlocked.Increment(ref _checked);
                if (reads[i].Error is { } error)
                {
                    Ctx.Error($"reachable object {nodes[i].Obj.Pointer} lost after a cycle: {error.Message}");
                }
                else if (BitConverter.ToUInt64(reads[i].Data) != Cookie.Value(nodes[i].Obj.Seq))
                {
                    Ctx.Error($"reachable object {nodes[i].Obj.Pointer}: cookie mismatch after a cycle");
                }
            }
        }
    }

    /// <summary>A last cycle; then every node's HeapObjects must be exactly the model's reachable count there.</summary>
    public override async Task TeardownAsync()
    {
        await CollectAsync();                        // its per-node marked bytes are the run's live set (gc_live_mb_per_node)
        for (int w = 0; w < _models.Length; w++)
        {
            await CheckAsync(w);
        }

        var mismatches = new List<string>();
        foreach (NodeInfo n in Ctx.Nodes)
        {
            long heap = await Ctx.Connection.Client.GetGrain<IGcNodeGrain>(n.Name).FinishSweepAsync();
            long model = _models.Sum(m => m.Keys.Count(p => p.Slot == n.Slot));
            if (heap != model)
            {
                mismatches.Add($"{n.Name}: HeapObjects {heap}, model {model}");
            }
        }

        _exact = mismatches.Count == 0 ? $"yes ({_models.Sum(m => m.Count)} objects)" : "NO: " + string.Join("; ", mismatches);
        if (mismatches.Count > 0)
        {
            Ctx.Error("after a forced cycle the heap does not hold exactly the reachable objects: " + string.Join("; ", mismatches));
        }

        ClusterGcStatus status = await Gc.GetGcStatusAsync();
        _cycles = status.NumGC - _startCycle;
        lock (_seen)
        {
            // Cycles the pacer started between the forced ones are in the coordinator's recent list; warm-up as above.
            List<ClusterGcCycle> paced = [.. status.Recent.Where(c => c.Number > _startCycle && !c.Forced)];
            _warmup += paced.RemoveAll(WarmUp);
            _paced.AddRange(paced);
        }

        // Release what is left, so the next run starts from an empty heap (the next cycle reclaims it).
        foreach (Dictionary<HeapPointer, Node> model in _models)
        {
            foreach (IGrouping<int, Node> owner in model.Values.Where(n => n.Rooted).GroupBy(n => n.Obj.Pointer.Slot))
            {
                await GcNodeOf(owner.Key).ReleaseRootsAsync(Ctx.Connection.RootLease.Id, [.. owner.Select(n => n.Obj.Pointer)]);
            }
        }

        await Gc.CollectAsync();
    }

    public override IReadOnlyDictionary<string, object> Extra
    {
        get
        {
            ClusterGcCycle[] seen, paced;
            GcNodeCycle[] final;
            lock (_seen)
            {
                seen = [.. _seen];
                paced = [.. _paced];
                final = _final;
            }

            // Each node's live bytes: the median it marked over the counted cycles (the pauses' live set); the last
            // cycle's when none was counted.
            GcNodeCycle[][] counted = [.. seen.Select(c => c.PerNode).Where(n => n.Length == final.Length)];
            long[] live = counted.Length == 0
                ? [.. final.Select(n => n.Marked)]
                : [.. final.Select((_, i) => (long)GraphPauses.Median(counted, c => c[i].Marked))];

            var extra = new Dictionary<string, object>
            {
                ["gc_cycles"] = _cycles,
                ["gc_warmup_cycles"] = _warmup,
                ["gc_live_mb"] = Math.Round(live.Sum() / 1048576.0, 1),
                ["gc_live_mb_per_node"] = string.Join(", ", final.Select((n, i) => $"{n.Node} {live[i] / 1048576.0:0.0}")),
            };
            foreach ((string key, object value) in GraphPauses.Fields(seen, paced))
            {
                extra[key] = value;
            }

            extra["gc_reclaimed"] = Interlocked.Read(ref _reclaimed);
            extra["gc_checked"] = Interlocked.Read(ref _checked);
            extra["gc_exact"] = _exact;
            return extra;
        }
    }
}
