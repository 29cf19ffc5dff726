using System.Net;

namespace ClusterHeap.Silo.Tests;

/// <summary>The silo's settings: option, then environment variable, then default.</summary>
public sealed class SiloSettingsTests
{
    private static SiloSettings Parse(string[] args, Dictionary<string, string>? env = null) =>
        SiloSettings.Parse(args, name => env is not null && env.TryGetValue(name, out string? v) ? v : null);

    [Fact]
    public void NothingGivenMeansDevelopmentClusteringAsItsOwnPrimaryWithDefaults()
    {
        SiloSettings s = Parse([]);
        Assert.Equal("node-11111", s.Name);
        Assert.Equal(11111, s.SiloPort);
        Assert.Equal(30000, s.GatewayPort);
        Assert.Equal(IPAddress.Loopback, s.Advertise);
        Assert.Equal(IPAddress.Any, s.Listen);
        Assert.Null(s.Primary);
        Assert.Null(s.Redis);
        Assert.Equal("clusterheap", s.ClusterId);
        Assert.Equal(512L << 30, s.ArenaSize);
        Assert.Equal(Environment.ProcessorCount, s.Procs);
        Assert.Equal(TimeSpan.FromMinutes(5), s.ScavengeDelay);
        Assert.Equal(long.MaxValue, s.MemoryLimit);
        Assert.Equal(TimeSpan.FromSeconds(2), s.ProbeTimeout);
    }

    [Fact]
    public void EnvironmentVariablesConfigureAContainerSilo()
    {
        SiloSettings s = Parse([], new()
        {
            ["CLUSTERHEAP_NAME"] = "node-2",
            ["CLUSTERHEAP_REDIS"] = "redis:6379",
            ["CLUSTERHEAP_CLUSTER_ID"] = "run-7",
            ["CLUSTERHEAP_ARENA_SIZE"] = "64GiB",
            ["CLUSTERHEAP_PROCS"] = "2",
            ["CLUSTERHEAP_SCAVENGE_DELAY"] = "1m",
            ["CLUSTERHEAP_MEMORY_LIMIT"] = "3GiB",
            ["CLUSTERHEAP_ADVERTISE"] = "10.1.2.3",
        });
        Assert.Equal("node-2", s.Name);
        Assert.Equal("redis:6379", s.Redis);
        Assert.Equal("run-7", s.ClusterId);
        Assert.Equal(64L << 30, s.ArenaSize);
        Assert.Equal(2, s.Procs);
        Assert.Equal(TimeSpan.FromMinutes(1), s.ScavengeDelay);
        Assert.Equal(3L << 30, s.MemoryLimit);
        Assert.Equal(IPAddress.Parse("10.1.2.3"), s.Advertise);
    }

    [Fact]
    public void AnOptionWinsOverItsEnvironmentVariable()
    {
        SiloSettings s = Parse(["--name", "from-option", "--silo-port=12000"], new() { ["CLUSTERHEAP_NAME"] = "from-env", ["CLUSTERHEAP_SILO_PORT"] = "13000" });
        Assert.Equal("from-option", s.Name);
        Assert.Equal(12000, s.SiloPort);
    }

    [Fact]
    public void PrimaryIsParsedAsAnEndpoint()
    {
        SiloSettings s = Parse(["--primary", "127.0.0.1:11111"]);
        Assert.Equal(new IPEndPoint(IPAddress.Loopback, 11111), s.Primary);
    }

    [Theory]
    [InlineData("--primary", "127.0.0.1:11111", "--redis", "127.0.0.1:6379")]
    [InlineData("--silo-port", "0", null, null)]
    [InlineData("--silo-port", "70000", null, null)]
    [InlineData("--arena-size", "lots", null, null)]
    [InlineData("--scavenge-delay", "soon", null, null)]
    [InlineData("--procs", "0", null, null)]
    [InlineData("--no-such-option", "1", null, null)]
    public void BadSettingsAreRejected(string option, string value, string? option2, string? value2)
    {
        string[] args = option2 is null ? [option, value] : [option, value, option2, value2!];
        Assert.Throws<ArgumentException>(() => Parse(args));
    }

    [Fact]
    public void AnOptionWithoutItsValueIsRejected() =>
        Assert.Throws<ArgumentException>(() => Parse(["--name"]));

    [Theory]
    [InlineData("64", 64L)]
    [InlineData("8KiB", 8L << 10)]
    [InlineData("512MiB", 512L << 20)]
    [InlineData("2G", 2L << 30)]
    [InlineData("1TiB", 1L << 40)]
    [InlineData("1.5GiB", 3L << 29)]
    [InlineData("0.5KiB", 512L)]
    public void SizesTakeBinaryUnits(string text, long bytes) =>
        Assert.Equal(bytes, SiloSettings.ParseSize("--arena-size", text));

    [Theory]
    [InlineData("500ms", 500)]
    [InlineData("30s", 30_000)]
    [InlineData("5m", 300_000)]
    [InlineData("1h", 3_600_000)]
    [InlineData("00:00:02", 2_000)]
    [InlineData("2m", 120_000)]
    [InlineData("20", 20_000)]
    [InlineData("1.5s", 1_500)]
    public void DurationsTakeUnitsOrATimeSpan(string text, int milliseconds) =>
        Assert.Equal(TimeSpan.FromMilliseconds(milliseconds), SiloSettings.ParseDuration("--scavenge-delay", text));

    [Theory]
    [InlineData("--arena-size", "1.5", "--arena-size: '1.5' is not a size in whole bytes")]
    [InlineData("--arena-size", "12XB", "--arena-size: '12XB' is not a size")]
    [InlineData("--scavenge-delay", "soon", "--scavenge-delay: 'soon' is not a duration")]
    [InlineData("--probe-timeout", "-2s", "--probe-timeout: '-2s' is not a duration")]
    public void BadSizesAndDurationsNameTheOptionAsTyped(string option, string value, string message) =>
        Assert.StartsWith(message, Assert.Throws<ArgumentException>(() => Parse([option, value])).Message, StringComparison.Ordinal);

    [Fact]
    public void ABadValueFromTheEnvironmentNamesTheVariable()
    {
        ArgumentException e = Assert.Throws<ArgumentException>(() => SiloSettings.Parse([], name => name == "CLUSTERHEAP_SCAVENGE_DELAY" ? "soon" : null));
        Assert.StartsWith("CLUSTERHEAP_SCAVENGE_DELAY: 'soon' is not a duration", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void HelpListsEveryOptionWithItsVariable()
    {
        string help = SiloSettings.Help();
        foreach (SiloSettings.Option option in SiloSettings.Options)
        {
            Assert.Contains(option.Name, help, StringComparison.Ordinal);
            Assert.Contains(option.Env, help, StringComparison.Ordinal);
        }
    }
}
