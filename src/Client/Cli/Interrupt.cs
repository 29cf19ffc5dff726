using System.Runtime.InteropServices;

namespace ClusterHeap.Client.Cli;

/// <summary>
/// Ctrl+C (SIGINT) for the whole process. The first one cancels <see cref="Token"/>: a stress run stops its
/// workers, checks and frees every object it still holds and writes its report marked interrupted; a
/// benchmark frees what it allocated; a connection attempt gives up. Nothing is left allocated on a running
/// cluster. A second Ctrl+C exits at once (the process dies of SIGINT, exit status 130), cleanup or not.
/// Commands that have nothing to clean up never <see cref="Arm"/> it, so there the first Ctrl+C exits.
/// <para>
/// SIGTERM (what `kill`, systemd and a container runtime send) is handled the same way: the first one cancels the token
/// of an armed command, which cleans up and exits; unarmed, or a second time, the process exits with 143 (128 + 15).
/// Left to the runtime, SIGTERM ends the process at once (143) and skips that cleanup: a stress run would leave its
/// objects on the cluster. A background job started by a non-interactive shell ignores SIGINT (POSIX), so SIGTERM is
/// the way to stop one.
/// </para>
/// </summary>
public sealed class Interrupt : IDisposable
{
    private readonly CancellationTokenSource _cts = new();
    private readonly TextWriter _error;
    private readonly PosixSignalRegistration _sigterm;
    private int _presses;
    private volatile bool _armed;

    private const int SigtermExitCode = 143;

    private Interrupt(TextWriter error)
    {
        _error = error;
        Console.CancelKeyPress += OnCancelKeyPress;
        _sigterm = PosixSignalRegistration.Create(PosixSignal.SIGTERM, OnSigterm);
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

    private void OnSigterm(PosixSignalContext context)
    {
        context.Cancel = true; // this handler decides: the runtime's default would exit before the cleanup
        if (!_armed || Interlocked.Increment(ref _presses) > 1)
        {
            // Off the signal thread: exiting runs the hosts' shutdown, which must not wait on this handler.
            _ = Task.Run(() => Environment.Exit(SigtermExitCode));
            return;
        }

        _error.WriteLine("terminated (SIGTERM): winding down and freeing what this command allocated (SIGTERM again to exit at once)");
        _cts.Cancel();
    }

    public void Dispose()
    {
        _sigterm.Dispose();
        Console.CancelKeyPress -= OnCancelKeyPress;
        _cts.Dispose();
    }
}
