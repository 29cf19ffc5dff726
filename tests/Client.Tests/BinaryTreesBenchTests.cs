using System.Diagnostics;
using ClusterHeap.Client.Bench;

namespace ClusterHeap.Client.Tests;

/// <summary>`clusterheap bench binarytrees`: the collector runs during it, and its checksum is binary-trees' node count.</summary>
public class BinaryTreesBenchTests
{
    [Theory]
    [InlineData("stw")]
    [InlineData("concurrent")]
    [InlineData("assist")]
    public async Task Bench_binarytrees_prints_the_right_checksum_and_collects_on_the_way(string mode)
    {
        var output = new StringWriter();
        var error = new StringWriter();
        // GOGC 10: a small heap still runs cycles at depth 12, in the middle of Build's recursion.
        int exit = await Program.RunAsync(["bench", "binarytrees", "-depth", "12", "-gogc", "10", "-mode", mode], output, error);
        string line = output.ToString();
        Assert.True(exit == 0, line + error);
        Assert.Contains($" mode={mode} ", line);
        Assert.Contains($"checksum={BinaryTreesResult.ExpectedChecksum(12)} ", line);
        Assert.Matches(@"numgc=[1-9]\d* ", line);
        Assert.Contains("verify=ok", line);
        foreach (string field in new[] { "ms=", "heapsys=", "pause_p50_us=", "pause_max_us=" }) Assert.Contains(field, line);
    }

    /// <summary>
    /// A fresh process, so that nothing of the collector is compiled yet: its cycles' pauses must compile no method
    /// (GcWarmup.cs runs the pause paths before the first stop). Without the warm-up the first cycle compiles some fifty
    /// methods inside its pauses, which was binary-trees' whole 3.3–3.9 ms pause maximum.
    /// </summary>
    [Theory]
    [InlineData("stw")]
    [InlineData("concurrent")]
    [InlineData("assist")]
    public async Task A_fresh_process_compiles_nothing_inside_its_pauses(string mode)
    {
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "clusterheap.dll"), "bench", "binarytrees", "-depth", "10",
            "-gogc", "10", "-mode", mode])
        {
            psi.ArgumentList.Add(a);
        }
        using Process p = Process.Start(psi)!;
        Task<string> stdout = p.StandardOutput.ReadToEndAsync();
        Task<string> stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
        string line = await stdout;
        Assert.True(p.ExitCode == 0, line + await stderr);
        Assert.Matches(@"numgc=[1-9]\d* ", line);
        Assert.Contains(" pause_jit=0 ", line);
    }

    [Fact]
    public void The_expected_checksum_is_the_node_count_Go_prints()
    {
        Assert.Equal(14985902, BinaryTreesResult.ExpectedChecksum(16));     // bench/anchors/binarytrees.go -depth 16
    }

    [Fact]
    public async Task A_depth_below_four_is_a_usage_error()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["bench", "binarytrees", "-depth", "2"], output, error));
    }

    [Fact]
    public async Task An_unknown_mode_is_a_usage_error_naming_the_modes()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["bench", "binarytrees", "-depth", "8", "-mode", "incremental"], output, error));
        Assert.Contains("stw, concurrent, assist", error.ToString() + output.ToString());
    }
}
