using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Commands;

public static class StressCommand
{
    public static Task<int> RunAsync(ArgReader args, ClusterConnection connection, TextWriter output) => throw new UsageException("stress: not yet");
}
