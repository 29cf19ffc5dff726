using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.Json;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// Ctrl+C against a running cluster: a real `clusterheap` process runs a stress workload against the shared
/// embedded cluster's silos (through their gateways, as against scripts/cluster.sh), and gets SIGINT mid-run.
/// It must free everything it held (the cluster's HeapObjects come back to what they were before the run) and
/// still write its report and JSON, marked interrupted; a second SIGINT ends it at once.
/// </summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed partial class InterruptTests(EmbeddedClusterFixture fixture)
{
    private readonly ClusterConnection _c = fixture.Connection;

    [LibraryImport("libc", SetLastError = true)]
    private static partial int kill(int pid, int signal);

    private const int SigInt = 2;
    private const int SigTerm = 15;

    /// <summary>`clusterheap stress …` as a child process against the fixture's cluster; stdout lines go to <paramref name="lines"/>.</summary>
    private static Process Start(string json, System.Collections.Concurrent.BlockingCollection<string> lines, string[] connect)
    {
        string dir = AppContext.BaseDirectory;
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(dir, "clusterheap.dll"), "stress", "larson", "--duration", "5m", "--workers", "3", "--slots", "2000",
            "--json", json, .. connect])
        {
            psi.ArgumentList.Add(a);
        }

        Process p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lines.Add(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lines.Add("stderr: " + e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        return p;
    }

    private static void WaitForLine(System.Collections.Concurrent.BlockingCollection<string> lines, string prefix, List<string> seen)
    {
        using var bound = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        while (true)
        {
            string line = lines.Take(bound.Token);
            seen.Add(line);
            if (line.StartsWith(prefix, StringComparison.Ordinal)) return;
        }
    }

    [Fact]
    public async Task CtrlCDuringStressFreesEveryObjectAndWritesTheReportMarkedInterrupted()
    {
        long before = (await _c.CentralHeap.GetStatsAsync()).Sum.HeapObjects;
        string json = Path.Combine(Path.GetTempPath(), $"clusterheap-interrupt-{Guid.NewGuid():N}.json");
        using var lines = new System.Collections.Concurrent.BlockingCollection<string>();
        var seen = new List<string>();
        using Process p = Start(json, lines, fixture.ConnectArgs);
        try
        {
            // A progress line is printed every 2 s of the timed run: the workers are running.
            WaitForLine(lines, "progress ", seen);
            long during = (await _c.CentralHeap.GetStatsAsync()).Sum.HeapObjects;
            Assert.True(during > before + 1000, $"the run holds objects: {before} before, {during} during");

            Assert.Equal(0, kill(p.Id, SigInt));
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
            string output = string.Join('\n', seen.Concat(lines));
            Assert.True(p.ExitCode == 130, $"exit {p.ExitCode}\n{output}");
            Assert.Contains("interrupted     by Ctrl+C", output);
            Assert.Contains("result: PASS (interrupted)", output);

            using var doc = JsonDocument.Parse(await File.ReadAllTextAsync(json));
            Assert.True(doc.RootElement.GetProperty("interrupted").GetBoolean());
            Assert.True(doc.RootElement.GetProperty("passed").GetBoolean());
            Assert.Equal(0, doc.RootElement.GetProperty("cookie_failures").GetInt64());
            Assert.True(doc.RootElement.GetProperty("ops").GetInt64() > 0);
            Assert.Equal(before, (await _c.CentralHeap.GetStatsAsync()).Sum.HeapObjects);
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            File.Delete(json);
        }
    }

    [Fact]
    public async Task ASecondCtrlCExitsAtOnce()
    {
        // A cluster of its own: the objects the killed run held are left behind, as a second Ctrl+C asks.
        await using ClusterConnection own = await ClusterConnection.OpenAsync(EmbeddedClusterFixture.Options with { Embedded = 1 });
        string json = Path.Combine(Path.GetTempPath(), $"clusterheap-interrupt-{Guid.NewGuid():N}.json");
        using var lines = new System.Collections.Concurrent.BlockingCollection<string>();
        var seen = new List<string>();
        using Process p = Start(json, lines, ["--gateway", string.Join(',', own.Gateways), "--cluster-id", own.ClusterId]);
        try
        {
            WaitForLine(lines, "progress ", seen);
            Assert.Equal(0, kill(p.Id, SigInt));
            WaitForLine(lines, "stderr: interrupted: winding down", seen);
            Assert.Equal(0, kill(p.Id, SigInt));
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(30));
            Assert.Equal(130, p.ExitCode); // killed by SIGINT: 128 + 2
            Assert.DoesNotContain(seen.Concat(lines), l => l.StartsWith("result:", StringComparison.Ordinal));
        }
        finally
        {
            if (!p.HasExited) p.Kill();
            File.Delete(json);
        }
    }

    [Fact]
    public async Task SigtermStopsTheWebMapWithItsEmbeddedSilo()
    {
        // SIGTERM stops it as Ctrl+C does: "stopping", exit 0 (left to the runtime's default it dies at once with 143).
        using var lines = new System.Collections.Concurrent.BlockingCollection<string>();
        var seen = new List<string>();
        var psi = new ProcessStartInfo("dotnet") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (string a in (string[])[Path.Combine(AppContext.BaseDirectory, "clusterheap.dll"), "web", "--embedded", "1",
            "--port", Endpoints.FreePorts(1)[0].ToString(System.Globalization.CultureInfo.InvariantCulture)])
        {
            psi.ArgumentList.Add(a);
        }

        using Process p = Process.Start(psi)!;
        p.OutputDataReceived += (_, e) => { if (e.Data is not null) lines.Add(e.Data); };
        p.ErrorDataReceived += (_, e) => { if (e.Data is not null) lines.Add("stderr: " + e.Data); };
        p.BeginOutputReadLine();
        p.BeginErrorReadLine();
        try
        {
            WaitForLine(lines, "heap map of the", seen);
            Assert.Equal(0, kill(p.Id, SigTerm));
            await p.WaitForExitAsync().WaitAsync(TimeSpan.FromSeconds(120));
            string output = string.Join('\n', seen.Concat(lines));
            Assert.True(p.ExitCode == 0, $"exit {p.ExitCode}\n{output}");
            Assert.Contains("stopping", output);
        }
        finally
        {
            if (!p.HasExited) p.Kill();
        }
    }
}
