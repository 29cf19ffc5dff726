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
/// count there exactly. Reports the cycles' pauses (p50/p99/max, from the coordinator's gctrace figures).
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
    private readonly List<double> _pausesMs = [];
    private long _cycles, _reclaimed, _checked, _startCycle;
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
        lock (_pausesMs)
        {
            _pausesMs.Add(cycle.PauseMs);
        }
    }

    private async Task MutateAsync(int w, int round, Latency latency)
    {
        Dictionary<HeapPointer, Node> model = _models[w];
        XorShift rng = _rng[w];
        long start = Stopwatch.GetTimestamp();
        long[] sizes = [.. Enumerable.Repeat(ObjectSize, NewPerRound)];
        (List<Obj> fresh, bool _) = await Ctx.MallocAsync(w, round, sizes, ObjectKind.Pointer);
        List<Node> old = [.. model.Values];
        foreach (Obj o in fresh)
        {
            model[o.Pointer] = new Node(o);
        }

        List<Node> all = [.. model.Values];
        // Link every new object to old ones and old ones to new ones, and rewire a few old links (some to nil).
        foreach (Obj o in fresh)
        {
            Node n = model[o.Pointer];
            await LinkAsync(n, (int)rng.Between(0, Links - 1), all[(int)rng.Between(0, all.Count - 1)].Obj.Pointer);
            if (old.Count > 0)
            {
                await LinkAsync(old[(int)rng.Between(0, old.Count - 1)], (int)rng.Between(0, Links - 1), o.Pointer);
            }
        }

        for (int i = 0; i < Math.Min(old.Count, NewPerRound / 4); i++)
        {
            Node n = old[(int)rng.Between(0, old.Count - 1)];
            await LinkAsync(n, (int)rng.Between(0, Links - 1), rng.Between(0, 3) == 0 ? HeapPointer.Null : all[(int)rng.Between(0, all.Count - 1)].Obj.Pointer);
        }

        // Keep about a quarter of the roots; release the rest (grouped by owner node).
        Node[] release = [.. model.Values.Where(n => n.Rooted && rng.Between(0, 3) != 0)];
        foreach (IGrouping<int, Node> owner in release.GroupBy(n => n.Obj.Pointer.Slot))
        {
            HeapPointer[] pointers = [.. owner.Select(n => n.Obj.Pointer)];
            await GcNodeOf(owner.Key).ReleaseRootsAsync(Ctx.Connection.RootLease.Id, pointers);
            foreach (Node n in owner)
            {
                n.Rooted = false;
            }

            Ctx.CountOps(pointers.Length);
        }

        latency.Record(start);
    }

    private async Task LinkAsync(Node from, int word, HeapPointer to)
    {
        await GcNodeOf(from.Obj.Pointer.Slot).LinkAsync(from.Obj.Pointer.Offset(8 * (word + 1)), to);
        from.Links[word] = to;
        Ctx.CountOps(1);
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
        HashSet<HeapPointer> reachable = Reachable(model);
        foreach (HeapPointer gone in model.Keys.Where(p => !reachable.Contains(p)).ToArray())
        {
            model.Remove(gone);
            Interlocked.Increment(ref _reclaimed);
        }

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
        await CollectAsync();
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
        lock (_pausesMs)
        {
            // Cycles the pacer started between the forced ones are in the coordinator's recent list.
            foreach (ClusterGcCycle c in status.Recent.Where(c => c.Number > _startCycle && !c.Forced))
            {
                _pausesMs.Add(c.PauseMs);
            }
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
            double[] p;
            lock (_pausesMs)
            {
                p = [.. _pausesMs.Order()];
            }

            static double Ms(double v) => Math.Round(v, 3);
            double At(double q) => p.Length == 0 ? 0 : p[Math.Min(p.Length - 1, (int)Math.Ceiling(q * p.Length) - 1)];
            return new Dictionary<string, object>
            {
                ["gc_cycles"] = _cycles,
                ["gc_pause_p50_ms"] = Ms(At(0.50)),
                ["gc_pause_p99_ms"] = Ms(At(0.99)),
                ["gc_pause_max_ms"] = Ms(p.Length == 0 ? 0 : p[^1]),
                ["gc_reclaimed"] = Interlocked.Read(ref _reclaimed),
                ["gc_checked"] = Interlocked.Read(ref _checked),
                ["gc_exact"] = _exact,
            };
        }
    }
}
