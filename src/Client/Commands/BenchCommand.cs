using ClusterHeap.Client.Bench;
using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Commands;

/// <summary>`clusterheap bench local …` and `bench binarytrees …`: the in-process benchmarks; `bench calls` is <see cref="CallsCommand"/>. See README "Benchmarks".</summary>
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
            case "binarytrees":
            {
                var bo = BinaryTreesOptions.Parse(args);
                args.Done("bench binarytrees");
                BinaryTreesResult b = BinaryTreesBench.Run(bo);
                output.WriteLine(b.Line());
                long want = BinaryTreesResult.ExpectedChecksum(bo.Depth);
                if (b.Checksum != want) output.WriteLine($"checksum: {b.Checksum}, but binary-trees of depth {bo.Depth} has {want} nodes");
                if (!b.Verify.Ok) output.WriteLine($"verify: {b.Verify}");
                return b.Verify.Ok && b.Checksum == want ? 0 : 1;
            }
            default:
                throw new UsageException("bench: say which benchmark: `bench local [-size N | -min N -max N] [-live N] [-ops N] [-random] [-seed N]`, `bench binarytrees [-depth 16] [-gogc 100] [-gctrace]` or `bench calls [--seconds 2] [connection options]`");
        }
    }
}
