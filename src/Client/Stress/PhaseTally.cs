namespace ClusterHeap.Client.Stress;

/// <summary>
/// The operations, mallocs and frees of one phase of a stress run (StressContext.Phases.cs). A count lands in the
/// tally of the phase current when it is made, whole: mallocs and their ops (or frees and theirs) go to one tally
/// together, so once the workers have stopped <c>Ops == Mallocs + Frees + other ops</c> holds within each phase.
/// </summary>
/// <remarks>Concurrency model: every worker adds with Interlocked; readers see each counter on its own.</remarks>
public sealed class PhaseTally
{
    private long _ops, _mallocs, _frees;

    public long Ops => Interlocked.Read(ref _ops);
    public long Mallocs => Interlocked.Read(ref _mallocs);
    public long Frees => Interlocked.Read(ref _frees);

    /// <summary>Adds <paramref name="ops"/> operations, of which <paramref name="mallocs"/> mallocs and <paramref name="frees"/> frees; returns the tally's ops.</summary>
    internal long Add(long ops, long mallocs = 0, long frees = 0)
    {
        if (mallocs != 0) Interlocked.Add(ref _mallocs, mallocs);
        if (frees != 0) Interlocked.Add(ref _frees, frees);
        return Interlocked.Add(ref _ops, ops);
    }
}
