using ClusterHeap.Grains.Gc;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// What a node's gate tells a cycle about the client calls its stop met (GcNodeParts.Drained, Held): the calls in
/// flight when it closed, which the stop waited for, and the calls that arrived while it was closed and waited at it.
/// </summary>
public sealed class GcGateCountsTests
{
    private static readonly TimeSpan Bound = TimeSpan.FromSeconds(30);

    [Fact]
    public async Task AStopCountsTheCallInFlightItDrainedAndTheCallItHeldButNotACallThatPassedAnOpenGate()
    {
        var gate = new GcGate();
        await gate.EnterAsync();                      // a call in flight: the stop must wait for it
        await gate.EnterAsync();                      // and one that passes while the gate is open
        gate.Exit();
        Assert.Equal(0, gate.Held);

        Task<bool> close = gate.CloseAsync(Bound);
        Assert.False(close.IsCompleted);
        Assert.Equal(1, gate.DrainedAtLastClose);

        Task entering = gate.EnterAsync().AsTask();   // arrives while closed: waits at the gate
        Assert.False(entering.IsCompleted);
        Assert.Equal(1, gate.Held);

        gate.Exit();                                  // the call in flight ends: the stop completes
        Assert.True(await close.WaitAsync(Bound));
        Assert.False(entering.IsCompleted);

        gate.Open();
        await entering.WaitAsync(Bound);
        gate.Exit();
        Assert.Equal(1, gate.Held);

        Assert.True(await gate.CloseAsync(Bound));    // nothing in flight this time
        Assert.Equal(0, gate.DrainedAtLastClose);
        gate.Open();
    }
}
