namespace ClusterHeap.Client.Stress;

/// <summary>
/// Everything a finished stress run measured, by owner: what was asked (<see cref="Options"/>), the run's shared
/// state (<see cref="Context"/>: the counts per phase, the timed phase's clock, cookies, losses and errors), the
/// workload (its shape and its own fields), the rounds' latencies, the cluster's figures and the verifier's verdict.
/// Each report field (StressFields.cs) says which of these its value comes from; StressRunner only gathers them.
/// </summary>
/// <param name="Workers">Workers that ran (the default is 2 per node).</param>
/// <param name="Nodes">Live nodes when the run started.</param>
/// <param name="Latency">Every worker's rounds, merged.</param>
/// <param name="Verify">The verifier's verdict: "ok (…)", "FAIL …" or "not run (…)".</param>
/// <param name="Interrupted">Ctrl+C or SIGTERM ended the run early.</param>
public sealed record StressOutcome(
    StressOptions Options,
    StressContext Context,
    Workload Workload,
    int Workers,
    int Nodes,
    Latency Latency,
    ClusterFigures Cluster,
    string Verify,
    bool Interrupted);
