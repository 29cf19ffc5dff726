using ClusterHeap.Grains.Gc;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// What a cycle's pause windows say about the .NET collector (GcCycleParts/GcNodeParts.ManagedGcMs, ManagedGcs): the
/// collections inside a window count, those between windows do not, and a window opened at an earlier reading counts
/// from that reading.
/// </summary>
public sealed class ManagedGcWindowsTests
{
    [Fact]
    public void CollectionsInsideTheWindowsCountAndThoseBetweenThemDoNot()
    {
        var w = new ManagedGcWindows();
        w.Open(ManagedGcWindows.Reading.Now());
        GC.Collect();
        w.Close();
        Assert.True(w.Collections >= 1, $"{w.Collections} collections counted in a window that held one");

        long inside = w.Collections;
        GC.Collect();                                             // between windows: not counted
        w.Open(ManagedGcWindows.Reading.Now());
        w.Close();
        Assert.Equal(inside, w.Collections);                     // an empty window (a collection of its own in it: unlikely)

        var early = ManagedGcWindows.Reading.Now();
        GC.Collect();                                             // before the window opens, after its starting reading
        long before = w.Collections;
        w.Open(early);
        w.Close();
        Assert.True(w.Collections - before >= 1, "a window opened at an earlier reading did not count from it");
    }
}
