using System.Globalization;
using ClusterHeap.Client.Cli;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Shell;

// The collector's shell commands (docs/DESIGN.md §12): gc, root, release, link. A pointer this client's alloc returned is
// already one of its roots; release lets go of it, root takes it (or any live object) again, and link stores a pointer
// in a pointer word, which the owner node checks against the heap bitmap.
public sealed partial class ShellSession
{
    private ICentralGcGrain Gc => _c.Client.GetGrain<ICentralGcGrain>(GrainKeys.CentralHeap);

    private async Task GcAsync(List<string> a)
    {
        switch (a)
        {
            case []:
                ClusterGcCycle cycle = await Gc.CollectAsync();
                _out.WriteLine(cycle.Trace);
                _out.WriteLine(string.Create(CultureInfo.InvariantCulture,
                    $"marked {cycle.MarkedObjects} objects on {cycle.PerNode.Length} nodes; {cycle.Batches} batches of foreign marks in {cycle.Waves} waves; " +
                    $"{cycle.PerNode.Sum(n => n.Dangling)} dangling words; pause {cycle.PauseMs:0.###} ms"));
                break;
            case ["log"]:
                ClusterGcStatus status = await Gc.GetGcStatusAsync();
                foreach (ClusterGcCycle c in status.Recent)
                {
                    _out.WriteLine(c.Trace);
                }

                _out.WriteLine($"{status.NumGC} cycles, {status.Aborted} aborted{(status.LastAbort is null ? "" : $" (last: {status.LastAbort})")}; " +
                    $"GOGC {(status.GcPercent < 0 ? "off" : status.GcPercent.ToString(CultureInfo.InvariantCulture))}, goal {(status.Goal == long.MaxValue ? "none" : ByteSize.Format(status.Goal))}, {status.LiveClients} clients with a lease");
                break;
            case ["percent", string n] when int.TryParse(n, NumberStyles.Integer, CultureInfo.InvariantCulture, out int percent) && percent >= 0:
                await Gc.SetGcPercentAsync(percent);
                _out.WriteLine($"GOGC {percent}");
                break;
            case ["mode", "stw" or "concurrent"]:
                await Gc.SetGcModeAsync(a[1] == "stw" ? GcMode.StopTheWorld : GcMode.Concurrent);
                _out.WriteLine($"gc mode {a[1]}");
                break;
            case ["off"]:
                await Gc.SetGcPercentAsync(-1);
                _out.WriteLine("GOGC off: cycles only when asked (or at the memory limit)");
                break;
            default:
                throw new UsageException("gc [log|percent N|off|mode stw|concurrent]");
        }
    }

    private async Task RootAsync(List<string> a, bool hold)
    {
        string usage = hold ? "root PTR" : "release PTR";
        if (a.Count != 1) throw new UsageException(usage);
        HeapPointer p = Pointer(a[0]);
        IGcNodeGrain owner = await GcNodeOfAsync(p);
        if (hold)
        {
            await owner.AddRootsAsync(_c.RootLease.Id, [p]);
            _out.WriteLine($"rooted {p}");
            return;
        }

        int released = await owner.ReleaseRootsAsync(_c.RootLease.Id, [p]);
        _out.WriteLine(released != 1 ? $"{p} was not one of this client's roots"
            : p.Address == HeapPointer.HintOf(p.Slot) ? $"released {p}: the zero-size base, which every size-0 allocation returns; it is no object, so no gc reclaims it"
            : $"released {p}: the next gc reclaims it unless a root reaches it");
    }

    private async Task LinkAsync(List<string> a)
    {
        if (a.Count != 3) throw new UsageException("link PTR WORD TARGET|nil");
        HeapPointer p = Pointer(a[0]);
        if (!int.TryParse(a[1], NumberStyles.Integer, CultureInfo.InvariantCulture, out int word) || word < 0)
        {
            throw new UsageException($"link: word '{a[1]}' is not a word index (0, 1, 2, … counting 8-byte words from the object's start)");
        }

        HeapPointer target = a[2] is "nil" or "0" ? HeapPointer.Null : Pointer(a[2]);
        HeapPointer at = At(p, 8L * word, "link");
        await (await GcNodeOfAsync(p)).LinkAsync(at, target);
        _out.WriteLine($"{p} word {word} -> {(target.IsNull ? "nil" : target.ToString())}");
    }

    private async Task<IGcNodeGrain> GcNodeOfAsync(HeapPointer p)
    {
        NodeInfo[] nodes = await _c.NodesAsync();
        NodeInfo owner = nodes.FirstOrDefault(n => n.Slot == p.Slot)
            ?? throw new UsageException($"{p}: slot {p.Slot} has no live node (live: {string.Join(", ", nodes.Select(n => $"{n.Name} slot {n.Slot}"))})");
        return _c.Client.GetGrain<IGcNodeGrain>(owner.Name);
    }
}
