using System.Globalization;
using System.Text.Json;
using System.Threading.Channels;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;
using Orleans.Runtime;

namespace ClusterHeap.Client.Web;

/// <summary>
/// The live heap map's source: while at least one page watches, it reads every live node's spans and
/// stats a few times a second (<see cref="Interval"/>), keeps what it last sent for each node, and hands
/// every watcher a frame of what changed (<see cref="MapFrame"/>). A node that leaves the central heap's
/// list stays on the map, marked dead with the reason membership gives; a node that does not answer is
/// marked unreachable until it does.
/// </summary>
/// <remarks>
/// Concurrency model: one polling loop (started by the first watcher, ended when the last leaves) owns
/// <see cref="_nodes"/>; <see cref="_lock"/> orders a new watcher's full frame against the loop's
/// broadcasts, so every watcher sees the full frame, then every later change exactly once.
/// </remarks>
public sealed class HeapMapFeed : IAsyncDisposable
{
    /// <summary>Time between two reads of the cluster.</summary>
    public static readonly TimeSpan Interval = TimeSpan.FromMilliseconds(250);

    /// <summary>How long one node may take to answer a read.</summary>
    public static readonly TimeSpan NodeTimeout = TimeSpan.FromSeconds(2);

    private static readonly JsonSerializerOptions Json = new() { NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals };

    private readonly ClusterConnection _connection;
    private readonly Lock _lock = new();
    private readonly Dictionary<string, NodeView> _nodes = new(StringComparer.Ordinal);
    private readonly List<Channel<string>> _watchers = [];
    private readonly CancellationTokenSource _stop = new();
    private ClusterLine? _cluster;
    private string? _error;
    private long _seq;
    private Task _loop = Task.CompletedTask;
    private bool _polling; // a polling loop runs or is starting; guarded by _lock

    public HeapMapFeed(ClusterConnection connection) => _connection = connection;

    /// <summary>Frames sent so far (each read of the cluster that changed something is one).</summary>
    public long Frames => Interlocked.Read(ref _seq);

    /// <summary>
    /// A new watcher: its channel starts with a full frame, then gets every change. Dispose the
    /// returned handle to leave; a watcher that falls 64 frames behind is dropped (its page reconnects
    /// and starts again from a full frame).
    /// </summary>
    public Watcher Watch()
    {
        var channel = Channel.CreateBounded<string>(new BoundedChannelOptions(64) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });
        lock (_lock)
        {
            channel.Writer.TryWrite(JsonSerializer.Serialize(FullFrame(), Json));
            _watchers.Add(channel);
            if (!_polling)
            {
                _polling = true;
                _loop = Task.Run(() => PollAsync(_stop.Token));
            }
        }

        return new Watcher(this, channel);
    }

    private void Leave(Channel<string> channel)
    {
        lock (_lock)
        {
            _watchers.Remove(channel);
            channel.Writer.TryComplete();
        }
    }

    private MapFrame FullFrame() => new(_seq, true, DateTimeOffset.UtcNow, _cluster, _error,
        [.. _nodes.Values.OrderBy(n => n.Slot).Select(n => n.Full())]);

    /// <summary>Reads the cluster every <see cref="Interval"/> while anyone watches.</summary>
    private async Task PollAsync(CancellationToken stop)
    {
        using var timer = new PeriodicTimer(Interval);
        do
        {
            lock (_lock)
            {
                if (_watchers.Count == 0)
                {
                    _polling = false;
                    return;
                }
            }

            MapFrame? frame;
            try
            {
                frame = await ReadAsync(stop);
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception e)
            {
                // The central heap did not answer (it may be moving after its silo died): say so, keep the map.
                string error = $"the central heap did not answer: {e.GetBaseException().Message}";
                frame = _error == error ? null : new MapFrame(0, false, DateTimeOffset.UtcNow, _cluster, _error = error, []);
            }

            if (frame is not null)
            {
                Broadcast(frame);
            }
        }
        while (await timer.WaitForNextTickAsync(stop));
    }

    private void Broadcast(MapFrame frame)
    {
        lock (_lock)
        {
            string text = JsonSerializer.Serialize(frame with { Seq = ++_seq }, Json);
            foreach (Channel<string> watcher in _watchers.ToArray())
            {
                if (!watcher.Writer.TryWrite(text))
                {
                    _watchers.Remove(watcher);
                    watcher.Writer.TryComplete();
                }
            }
        }
    }

    /// <summary>One read of the cluster; the frame of what changed, or null when nothing did.</summary>
    private async Task<MapFrame?> ReadAsync(CancellationToken stop)
    {
        NodeInfo[] live = await _connection.CentralHeap.GetNodesAsync().WaitAsync(NodeTimeout, stop);
        CentralView view = await _connection.CentralHeap.GetViewAsync().WaitAsync(NodeTimeout, stop);
        Dictionary<(int LenderSlot, long LeaseId), string> lessees = view.Leases.ToDictionary(l => (l.Key.LenderSlot, l.Key.LeaseId), l => l.LesseeNode);
        (NodeInfo Info, SpanRow[]? Spans, NodeStats? Stats, string? Failure)[] reads = await Task.WhenAll(live.Select(n => ReadNodeAsync(n, stop)));

        var changes = new List<NodeChange>();
        Dictionary<SiloAddress, SiloStatus>? hosts = null;
        lock (_lock)
        {
            foreach ((NodeInfo? info, SpanRow[]? spans, NodeStats? stats, string? failure) in reads)
            {
                if (!_nodes.TryGetValue(info.Name, out NodeView? node) || node.Generation != info.Generation)
                {
                    _nodes[info.Name] = node = new NodeView(info);
                }

                if (node.Update(spans, stats, failure, lessees) is { } change)
                {
                    changes.Add(change);
                }
            }

            NodeView[] gone = _nodes.Values.Where(n => n.Dead is null && !live.Any(l => l.Name == n.Name && l.Generation == n.Generation)).ToArray();
            if (gone.Length > 0)
            {
                hosts = [];
            }
        }

        if (hosts is not null)
        {
            try
            {
                IManagementGrain management = _connection.Client.GetGrain<IManagementGrain>(0);
                hosts = await management.GetHosts(onlyActive: false).WaitAsync(NodeTimeout, stop);
            }
            catch (Exception e) when (e is not OperationCanceledException)
            {
                // The reason then says only that the central heap dropped the node.
            }

            lock (_lock)
            {
                foreach (NodeView? node in _nodes.Values.Where(n => n.Dead is null && !live.Any(l => l.Name == n.Name && l.Generation == n.Generation)))
                {
                    changes.Add(node.Die(hosts));
                }
            }
        }

        NodeStats[] rows = reads.Where(r => r.Stats is not null).Select(r => r.Stats!).ToArray();
        var cluster = new ClusterLine(live.Length, rows.Sum(r => r.HeapAlloc), rows.Sum(r => r.HeapInuse), rows.Sum(r => r.HeapSys),
            rows.Sum(r => r.HeapReleased), rows.Sum(r => r.Mallocs), rows.Sum(r => r.Frees), view.TotalGranted,
            view.MemoryLimit == long.MaxValue ? null : view.MemoryLimit, view.Leases.Length);
        bool clusterChanged = cluster != _cluster || _error is not null;
        _cluster = cluster;
        _error = null;
        return changes.Count == 0 && !clusterChanged ? null : new MapFrame(0, false, DateTimeOffset.UtcNow, cluster, null, [.. changes]);
    }

    private async Task<(NodeInfo Info, SpanRow[]? Spans, NodeStats? Stats, string? Failure)> ReadNodeAsync(NodeInfo info, CancellationToken stop)
    {
        try
        {
            IHeapNodeGrain grain = _connection.Node(info.Name);
            Task<SpanRow[]> spans = grain.GetSpansAsync();
            Task<NodeStats> stats = grain.GetStatsAsync();
            return (info, await spans.WaitAsync(NodeTimeout, stop), await stats.WaitAsync(NodeTimeout, stop), null);
        }
        catch (Exception e) when (e is not OperationCanceledException || !stop.IsCancellationRequested)
        {
            return (info, null, null, e.GetBaseException().Message);
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        try
        {
            await _loop;
        }
        catch (OperationCanceledException)
        {
            // stopping
        }

        lock (_lock)
        {
            foreach (Channel<string> watcher in _watchers)
            {
                watcher.Writer.TryComplete();
            }

            _watchers.Clear();
        }

        _stop.Dispose();
    }

    /// <summary>One page's subscription: its frames, as JSON text, in order.</summary>
    public sealed class Watcher(HeapMapFeed feed, Channel<string> channel) : IDisposable
    {
        public ChannelReader<string> Frames => channel.Reader;

        public void Dispose() => feed.Leave(channel);
    }

    /// <summary>What the feed last sent for one node (one generation of it).</summary>
    private sealed class NodeView(NodeInfo info)
    {
        private readonly Dictionary<long, SpanCell> _spans = [];
        private NodeStats? _stats;
        private string? _statsKey;
        private string? _failure;
        private long _usedPages;
        private ulong _arenaStart;
        private bool _drawn;

        public string Name { get; } = info.Name;
        public int Slot { get; } = info.Slot;
        public ushort Generation { get; } = info.Generation;
        public SiloAddress Silo { get; } = info.Silo;
        public string? Dead { get; private set; }

        public NodeChange Full() => Change(true, _stats, [.. _spans.Values.OrderBy(s => s.Page).Select(s => s.ToWire())], []);

        public NodeChange? Update(SpanRow[]? spans, NodeStats? stats, string? failure, Dictionary<(int, long), string> lessees)
        {
            if (spans is null || stats is null)
            {
                string reason = $"node {Name} did not answer: {failure}";
                if (reason == _failure)
                {
                    return null;
                }

                _failure = reason;
                return Change(false, null, [], []);
            }

            bool hadFailure = _failure is not null;
            _failure = null;
            // Spans come in address order from the arena's start: the first one's start is the arena's.
            bool reset = !_drawn;
            _drawn = true;
            if (_arenaStart == 0 && spans.Length > 0)
            {
                _arenaStart = spans[0].Start;
            }

            int pageSize = HeapConstantsPageSize;
            var up = new List<object[]>();
            var seen = new HashSet<long>();
            long used = 0;
            foreach (SpanRow row in spans)
            {
                SpanCell cell = Cell(row, pageSize, lessees);
                seen.Add(cell.Page);
                used = Math.Max(used, cell.Page + cell.Pages);
                if (!_spans.TryGetValue(cell.Page, out SpanCell old) || old != cell)
                {
                    _spans[cell.Page] = cell;
                    up.Add(cell.ToWire());
                }
            }

            long[] removed = _spans.Keys.Where(p => !seen.Contains(p)).ToArray();
            foreach (long p in removed)
            {
                _spans.Remove(p);
            }

            string statsKey = JsonSerializer.Serialize(stats, Json);
            bool statsChanged = statsKey != _statsKey;
            _stats = stats;
            _statsKey = statsKey;
            bool usedChanged = used != _usedPages;
            _usedPages = used;
            return up.Count == 0 && removed.Length == 0 && !statsChanged && !usedChanged && !hadFailure && !reset
                ? null
                : Change(reset, statsChanged ? stats : null, [.. up], removed);
        }

        public NodeChange Die(Dictionary<SiloAddress, SiloStatus>? hosts)
        {
            string? status = hosts is not null && hosts.TryGetValue(Silo, out SiloStatus s) ? s.ToString() : null;
            Dead = status is null
                ? $"node {Name} left the cluster: the central heap no longer lists it (its slot {Slot} was reclaimed)"
                : $"node {Name} left the cluster: its silo {Silo} is {status} in membership; the central heap reclaimed slot {Slot}";
            return Change(false, null, [], []);
        }

        private NodeChange Change(bool reset, NodeStats? stats, object[][] up, long[] removed) =>
            new(Name, Slot, Generation, string.Create(CultureInfo.InvariantCulture, $"0x{_arenaStart:x}"), HeapConstantsPageSize,
                _usedPages, reset, Dead ?? _failure, stats, up, removed);

        private SpanCell Cell(SpanRow row, int pageSize, Dictionary<(int, long), string> lessees)
        {
            long page = (long)((row.Start - _arenaStart) / (ulong)pageSize);
            if (!row.InUse)
            {
                bool released = row.ReleasedPages > 0 && row.ReleasedPages >= row.Pages;
                return new SpanCell(page, row.Pages, 0, 0, 0, released ? SpanState.Released : SpanState.Free,
                    released ? "released to the OS" : row.ReleasedPages > 0 ? $"free ({row.ReleasedPages} of {row.Pages} pages released)" : "free");
            }

            if (row.LeaseId != 0)
            {
                string lessee = lessees.TryGetValue((Slot, row.LeaseId), out string? l) ? l : "another node";
                return new SpanCell(page, row.Pages, row.SizeClass, row.Objects, row.Live, SpanState.Leased, $"lent to {lessee} (lease {row.LeaseId})");
            }

            string owner = row.Cache switch
            {
                "mcache" => $"an mcache of {Name}",
                "central" => $"mcentral of {Name}",
                _ => $"{row.Cache} of {Name}",
            };
            if (row.SizeClass == 0) owner = $"{Name} (large object)";
            return row.Unswept
                ? new SpanCell(page, row.Pages, row.SizeClass, row.Objects, row.Live, SpanState.Unswept, $"{owner}, unswept: objects the last collection did not reach still count until the sweep frees them")
                : new SpanCell(page, row.Pages, row.SizeClass, row.Objects, row.Live, SpanState.InUse, owner);
        }

        private const int HeapConstantsPageSize = Heap.HeapConstants.PageSize;
    }
}
