using System.Text.Json;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;
using static ClusterHeap.Client.Stress.StressFields;

namespace ClusterHeap.Client.Tests;

/// <summary>Each workload in a short form against the shared embedded cluster, and the cookie detector itself.</summary>
[Collection(EmbeddedClusterCollection.Name)]
public sealed class StressTests(EmbeddedClusterFixture fixture)
{
    private readonly ClusterConnection _c = fixture.Connection;

    private static readonly string[] RequiredKeys =
    [
        "workload", "ops", "ops_per_sec", "p50_us", "p99_us", "p999_us", "refills", "leases",
        "peak_committed_bytes", "utilization", "cookie_failures", "lost_objects", "errors",
    ];

    private async Task<StressOptions> ShortAsync(string workload)
    {
        var o = new StressOptions { Workload = workload, Ops = 3000, Workers = 3, Batch = 16, Slots = 300, Handoff = 200, Progress = false };
        if (workload == "grow-shrink")
        {
            ClusterStats s = await _c.CentralHeap.GetStatsAsync();
            o = o with { Ops = 0, Rounds = 1, Limit = s.TotalGranted + (48L << 20), Min = 16384, Max = 65536, Batch = 64 };
        }
        return o;
    }

    [Theory]
    [InlineData("larson")]
    [InlineData("xmalloc")]
    [InlineData("mstress")]
    [InlineData("ring")]
    [InlineData("grow-shrink")]
    public async Task AShortRunChecksEveryCookieAndPasses(string workload)
    {
        StressOptions o = await ShortAsync(workload);
        var output = new StringWriter();
        StressReport r = await StressCommand.RunReportAsync(o, _c, output);

        Assert.True(r.Passed, output.ToString());
        Assert.Equal(0, r.Get(CookieFailures));
        Assert.Equal(0, r.Get(Errors));
        Assert.Equal(0, r.Get(LostObjects));
        Assert.True(r.Get(Ops) >= (o.Ops > 0 ? o.Ops : 1), $"ops {r.Get(Ops)}");
        Assert.Equal(r.Get(Mallocs) + r.Get(Frees), r.Get(Ops));
        // Every object freed in the run or at the end had its cookie checked.
        Assert.True(r.Get(CookieChecks) >= r.Get(Frees), $"{r.Get(CookieChecks)} checks, {r.Get(Frees)} frees");
        Assert.StartsWith("ok", r.Get(Verify));
        Assert.True(r.Get(P50Us) > 0 && r.Get(P50Us) <= r.Get(P99Us) && r.Get(P99Us) <= r.Get(P999Us), $"{r.Get(P50Us)} {r.Get(P99Us)} {r.Get(P999Us)}");
        Assert.True(r.Get(PeakCommittedBytes) > 0);
        Assert.Contains("result: PASS", output.ToString());
        if (workload == "grow-shrink")
        {
            Assert.True(r.Get(OutOfMemory) > 0, "grow-shrink reached the limit");
            Assert.True((long)r.Get(Extra)["returned_bytes"] > 0, "memory came back after free and scavenge");
            Assert.Equal(long.MaxValue, await _c.CentralHeap.GetMemoryLimitAsync());
        }
    }

    [Fact]
    public async Task TheJsonReportHasTheContractKeysWithTheReportsValues()
    {
        string file = Path.Combine(Path.GetTempPath(), $"clusterheap-stress-{Guid.NewGuid():N}.json");
        try
        {
            StressOptions o = await ShortAsync("larson") with { Json = file };
            StressReport r = await StressCommand.RunReportAsync(o, _c, new StringWriter());
            using var json = JsonDocument.Parse(await File.ReadAllTextAsync(file));
            JsonElement root = json.RootElement;
            foreach (string key in RequiredKeys) Assert.True(root.TryGetProperty(key, out _), $"missing key {key}");
            Assert.Equal("larson", root.GetProperty("workload").GetString());
            Assert.Equal(r.Get(Ops), root.GetProperty("ops").GetInt64());
            Assert.Equal(r.Get(CookieFailures), root.GetProperty("cookie_failures").GetInt64());
            Assert.Equal(r.Get(LostObjects), root.GetProperty("lost_objects").GetInt64());
            Assert.Equal(r.Get(Errors), root.GetProperty("errors").GetInt64());
            Assert.Equal(r.Get(Refills), root.GetProperty("refills").GetInt64());
            Assert.Equal(r.Get(PeakCommittedBytes), root.GetProperty("peak_committed_bytes").GetInt64());
            Assert.Equal(r.Get(P99Us), root.GetProperty("p99_us").GetDouble());
            Assert.InRange(root.GetProperty("utilization").GetDouble(), 0.0, 1.0);
            Assert.True(root.GetProperty("ops_per_sec").GetDouble() > 0);
            Assert.True(root.GetProperty("passed").GetBoolean());
            Assert.True(root.GetProperty("verify_ok").GetBoolean());
        }
        finally
        {
            File.Delete(file);
        }
    }

    [Fact]
    public async Task ACookieCheckCatchesAnOverwrittenByteAtEitherEnd()
    {
        var ctx = new StressContext(_c, new StressOptions { Workload = "larson" });
        await ctx.StartAsync();
        (List<Obj> objs, bool oom) = await ctx.MallocAsync(0, 0, [64, 200, 12], ObjectKind.Noscan);
        Assert.False(oom);
        Assert.Equal(3, objs.Count);
        // The broken control: one object's last byte and another's first byte changed behind the cookie's back
        // (each flipped, so the new byte differs from the cookie's whatever the cookie is).
        byte last = (await _c.Router.ReadAsync(objs[1].Pointer.Offset(199), 1))[0];
        byte first = (await _c.Router.ReadAsync(objs[2].Pointer, 1))[0];
        await _c.Router.WriteAsync(objs[1].Pointer.Offset(199), [(byte)~last]);
        await _c.Router.WriteAsync(objs[2].Pointer, [(byte)~first]);
        await ctx.FreeAsync(objs);
        Assert.Equal(2, ctx.CookieFailures);
        Assert.Equal(3, ctx.CookieChecks);
        Assert.Equal(3, ctx.Fill.Frees); // no timed phase began: the counts are the fill's
        Assert.Equal(0, ctx.Errors);
    }

    [Fact]
    public async Task TheTimedPhaseEndsOnTimeAndARoundHeldPastItCountsInTheWindDownApart()
    {
        var ctx = new StressContext(_c, new StressOptions { Workload = "larson", Duration = TimeSpan.FromMilliseconds(300) });
        ctx.BeginTimed();
        ctx.CountOps(100);                                           // rounds done in the timed phase
        await ctx.TimedEnded.WaitAsync(TimeSpan.FromSeconds(60));    // its timer ends it: no worker has to look
        Assert.True(ctx.Stopping);
        TimeSpan heldFrom = ctx.Clock.Elapsed;                       // a round the end cut through, held as a dying silo's calls hold it ...
        await Task.Delay(TimeSpan.FromSeconds(3));
        ctx.CountOps(7);                                             // ... finishes in the wind-down
        TimeSpan held = ctx.Clock.Elapsed - heldFrom;                // on the context's own clock: a timer may fire a little early by it
        ctx.EndWindDown();

        Assert.Equal(100, ctx.Timed.Ops);
        Assert.Equal(7, ctx.WindDown.Ops);
        Assert.InRange(ctx.TimedDuration, TimeSpan.FromMilliseconds(300), TimeSpan.FromSeconds(2.5));
        Assert.True(ctx.WindDownDuration >= held, $"wind-down {ctx.WindDownDuration}, the round was held {held}");
        Assert.True(held >= TimeSpan.FromSeconds(2.9), $"held {held}");
    }

    [Fact]
    public void TheCountThatReachesTheOpTargetEndsTheTimedPhase()
    {
        var ctx = new StressContext(_c, new StressOptions { Workload = "larson", Ops = 50 });
        ctx.BeginTimed();
        ctx.CountOps(30);
        Assert.False(ctx.Stopping);
        ctx.CountOps(30);
        Assert.True(ctx.Stopping);
        Assert.True(ctx.TimedEnded.IsCompleted);
        ctx.CountOps(5);
        ctx.EndWindDown();
        Assert.Equal(60, ctx.Timed.Ops);
        Assert.Equal(5, ctx.WindDown.Ops);
        Assert.Equal(0, ctx.Teardown.Ops);
    }

    [Fact]
    public async Task AFreeOfAnAlreadyFreedObjectIsAnErrorNotALoss()
    {
        var ctx = new StressContext(_c, new StressOptions { Workload = "ring" });
        await ctx.StartAsync();
        (List<Obj> objs, _) = await ctx.MallocAsync(1, 0, [32], ObjectKind.Noscan);
        await _c.Router.FreeAsync(objs[0].Pointer);
        await ctx.FreeAsync(objs);
        Assert.Equal(1, ctx.Errors);
        Assert.Equal(0, ctx.Lost);
        Assert.Contains(ctx.ErrorSamples, e => e.Contains("invalid pointer", StringComparison.Ordinal));
    }

    [Fact]
    public async Task StressRejectsBadOptionsBeforeConnectingAndExplainsItsOptions()
    {
        var output = new StringWriter();
        var error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["stress", "nope"], output, error));
        Assert.Contains("Argument 'nope' not recognized", error.ToString());
        // Options are checked before any cluster is contacted, and a connection option's value is never the workload.
        error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["stress", "--gateway", "127.0.0.1:9", "nope"], output, error));
        Assert.Contains("Argument 'nope' not recognized", error.ToString());
        error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["--redis", "127.0.0.1:9", "stress", "nope"], output, error));
        Assert.Contains("Argument 'nope' not recognized", error.ToString());
        error = new StringWriter();
        Assert.Equal(2, await Program.RunAsync(["stress", "larson", "--batch", "0"], output, error));
        Assert.Contains("--batch: '0' is not a whole number from 1 to 4096", error.ToString());
        Assert.Equal(0, await Program.RunAsync(["stress", "--help"], output, error));
        Assert.Contains("--json <FILE>", output.ToString());
        Assert.Contains("--redis <HOST:PORT>", output.ToString());
    }
}
