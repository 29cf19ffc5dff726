using System.Collections.Concurrent;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;
using Microsoft.Extensions.Logging;

namespace ClusterHeap.Client.Tests;

/// <summary>
/// An embedded start brings the non-primary silos up together, the moment a grain directory is most
/// likely to disagree with itself. The central heap must still be one activation, and it must know
/// every node: with Orleans' default (eventually consistent) directory a second activation took some
/// nodes' registrations and lost them when Orleans removed it as a duplicate (CI once saw a demo wait
/// 30 s for a node the surviving central heap never heard of).
/// </summary>
public sealed class StartupTests
{
    [Fact]
    public async Task SilosStartingTogetherRegisterWithOneCentralHeapActivation()
    {
        const int silos = 4;
        for (int round = 1; round <= 4; round++)
        {
            var logs = new LogCapture();
            await using (ClusterConnection c = await ClusterConnection.OpenAsync(
                EmbeddedClusterFixture.Options with { Embedded = silos, ArenaSize = 64L << 20, LogSink = logs }))
            {
                NodeInfo[] nodes = await c.NodesAsync();
                Assert.Equal(silos, nodes.Length);
                Assert.Equal(silos, nodes.Select(n => n.Slot).Distinct().Count());
                Assert.Equal(silos, nodes.Select(n => n.Silo).Distinct().Count());

                IManagementGrain management = c.Client.GetGrain<IManagementGrain>(0);
                GrainId centralId = c.CentralHeap.GetGrainId();
                DetailedGrainStatistic[] activations = (await management.GetDetailedGrainStatistics()).Where(a => a.GrainId == centralId).ToArray();
                Assert.Single(activations);
            }

            string[] central = [.. logs.Messages.Where(m => m.StartsWith("Central heap", StringComparison.Ordinal))];
            Assert.True(central.Count(m => m.Contains("activated on", StringComparison.Ordinal)) == 1,
                $"round {round}: the central heap activated more than once:\n{string.Join('\n', central)}");
            Assert.DoesNotContain(central, m => m.Contains("DuplicateActivation", StringComparison.Ordinal));
        }
    }

    /// <summary>Keeps every formatted log message of a connection (silos and client alike).</summary>
    private sealed class LogCapture : ILoggerProvider
    {
        private readonly ConcurrentQueue<string> _messages = new();

        public IEnumerable<string> Messages => _messages;

        public ILogger CreateLogger(string categoryName) => new Sink(_messages);

        public void Dispose()
        {
        }

        private sealed class Sink(ConcurrentQueue<string> messages) : ILogger
        {
            public IDisposable? BeginScope<TState>(TState state) where TState : notnull => null;

            public bool IsEnabled(LogLevel logLevel) => logLevel >= LogLevel.Information;

            public void Log<TState>(LogLevel logLevel, EventId eventId, TState state, Exception? exception, Func<TState, Exception?, string> formatter) =>
                messages.Enqueue(formatter(state, exception));
        }
    }
}
