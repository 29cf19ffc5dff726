using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Commands;

public static class DemoCommand
{
    public static Task<int> RunAsync(ArgReader args, TextWriter output, TextWriter error) => throw new UsageException("demo: not yet");
}
