using System.Collections.Concurrent;

namespace ClusterHeap.Client.Stress;

// The counters of the report (the ops, mallocs and frees per phase: StressContext.Phases.cs). Concurrency model: they move with Interlocked from every worker.
public sealed partial class StressContext
{
    private const int MaxErrorSamples = 20;

    private readonly ConcurrentQueue<string> _errorSamples = new();
    private long _cookieChecks, _cookieFailures, _lost, _errors, _ooms, _unsettled;

    public long CookieChecks => Interlocked.Read(ref _cookieChecks);
    public long CookieFailures => Interlocked.Read(ref _cookieFailures);
    public long Lost => Interlocked.Read(ref _lost);
    public long Errors => Interlocked.Read(ref _errors);
    public long OutOfMemory => Interlocked.Read(ref _ooms);
    /// <summary>Objects on live nodes whose free call was cut off by a dying silo (a gateway): freed or not, nobody knows.</summary>
    public long Unsettled => Interlocked.Read(ref _unsettled);
    public IReadOnlyCollection<string> ErrorSamples => _errorSamples;

    /// <summary>Counts <paramref name="n"/> operations that are neither mallocs nor frees (graph's links and root releases).</summary>
    public void CountOps(long n) => Count(n, 0, 0);

    private void CountMallocs(long n) => Count(n, n, 0);

    private void CountFrees(long n) => Count(n, 0, n);

    private (long Ops, TaskCompletionSource Reached)? _watch;

    /// <summary>Completes once the timed phase has done <paramref name="ops"/> operations (tests act mid-run on it).</summary>
    public Task WhenTimedOpsReach(long ops)
    {
        (long ops, TaskCompletionSource) watch = (ops, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        _watch = watch;
        return watch.Item2.Task;
    }

    public void Error(string message)
    {
        Interlocked.Increment(ref _errors);
        if (_errorSamples.Count < MaxErrorSamples) _errorSamples.Enqueue(message);
    }

    private void LoseObjects(long n) => Interlocked.Add(ref _lost, n);
}
