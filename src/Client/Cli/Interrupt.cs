namespace ClusterHeap.Client.Cli;

/// <summary>
/// Ctrl+C (SIGINT) for the whole process. The first one cancels <see cref="Token"/>: a stress run stops its
/// workers, checks and frees every object it still holds and writes its report marked interrupted; a
/// benchmark frees what it allocated; a connection attempt gives up. Nothing is left allocated on a running
/// cluster. A second Ctrl+C exits at once (the process dies of SIGINT, exit status 130), cleanup or not.
/// Commands that have nothing to clean up never <see cref="Arm"/> it, so there the first Ctrl+C exits.
/// </summary>
public sealed class Interrupt : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly TextWriter _error;
    private int _presses;
    private volatile bool _armed;

    private Interrupt(TextWriter error)
    {
        _error = error;
        Console.CancelKeyPress += OnCancelKeyPress;
    }

    /// <summary>The command will clean up on the first Ctrl+C: from now on it cancels this token instead of exiting.</summary>
    public CancellationToken Arm()
    {
        _armed = true;
        return _cts.Token;
    }

    /// <summary>True once Ctrl+C was pressed with the handler armed.</summary>
    public bool Requested => _cts.IsCancellationRequested;

    /// <summary>Starts listening for Ctrl+C; dispose to stop.</summary>
    public static Interrupt Install(TextWriter error) => new(error);

    private void OnCancelKeyPress(object? sender, ConsoleCancelEventArgs e)
    {
        if (!_armed || Interlocked.Increment(ref _presses) > 1)
        {
            e.Cancel = false; // the runtime ends the process now
            return;
        }

        e.Cancel = true;
        _error.WriteLine("interrupted: winding down and freeing what this command allocated (Ctrl+C again to exit at once)");
        _cts.Cancel();
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancelKeyPress;
        _cts.Dispose();
    }
}
