using ClusterHeap.Client.Cli;
using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Commands;

public static class CallsCommand
{
    public static Task<int> RunAsync(ArgReader args, ClusterConnection connection, TextWriter output) => throw new UsageException("bench calls: not yet");
}
