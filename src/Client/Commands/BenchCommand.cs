using ClusterHeap.Client.Bench;
using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Commands;

/// <summary>`clusterheap bench local …`: the in-process benchmark; `bench calls` is <see cref="CallsCommand"/>. See README "Benchmarks".</summary>
public static class BenchCommand
{
    public static int Run(string? what, ArgReader args, TextWriter output)
    {
        switch (what)
        {
            case "local":
                var o = RingOptions.Parse(args);
                args.Done("bench local");
                RingResult r = RingBench.Run(o);
                output.WriteLine(r.Line());
                if (!r.Verify.Ok) output.WriteLine($"verify: {r.Verify}");
                return r.Verify.Ok ? 0 : 1;
            default:
                throw new UsageException("bench: say which benchmark: `bench local [-size N | -min N -max N] [-live N] [-ops N] [-random] [-seed N]` or `bench calls [--seconds 2] [connection options]`");
        }
    }
}
