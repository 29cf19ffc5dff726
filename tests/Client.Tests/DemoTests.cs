namespace ClusterHeap.Client.Tests;

/// <summary>The README's first command, run as the CLI runs it (its own embedded cluster).</summary>
public sealed class DemoTests
{
    [Fact]
    public async Task TheDemoStartsAClusterRunsAStressTestAndShowsReportMapStatsAndVerifier()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        int exit = await Program.RunAsync(["demo", "--duration", "1", "--no-color"], output, error);
        string text = output.ToString();
        Assert.True(exit == 0, text + error);
        Assert.Contains("up in", text);
        Assert.Contains("stress larson: 6 workers", text);
        Assert.Contains("cookies", text);
        Assert.Contains("result: PASS", text);
        Assert.Contains("returned to the OS", text);
        Assert.Contains("legend:", text);
        Assert.Contains("memory limit none", text);
        Assert.Contains("ok    cluster:", text);
        Assert.Contains("demo passed in", text);
        Assert.DoesNotContain("\u001b[", text);
    }
}
