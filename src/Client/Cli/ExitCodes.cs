namespace ClusterHeap.Client.Cli;

/// <summary>The exit codes of <c>clusterheap</c>, as every --help and the README list them.</summary>
public static class ExitCodes
{
    public const int Ok = 0;
    /// <summary>The command ran and failed: a wrong cookie, an unexpected error, a verifier problem, a refused shell command.</summary>
    public const int Failed = 1;
    /// <summary>The command line was wrong (unknown option or command, bad value): nothing ran.</summary>
    public const int Usage = 2;
    /// <summary>No cluster could be reached (or an embedded one could not start).</summary>
    public const int NoCluster = 3;
    /// <summary>Stopped by Ctrl+C after cleaning up (128 + SIGINT, as shells report it).</summary>
    public const int Interrupted = 130;

    public const string Help = """
        exit codes: 0 ok, 1 failed (cookie failure, unexpected error, verifier problem), 2 usage, 3 no cluster,
                    130 interrupted by Ctrl+C or SIGTERM (after cleanup)
        """;
}
