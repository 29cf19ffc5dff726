namespace ClusterHeap.Heap.Tests.Gc;

/// <summary>
/// The client-root index (RootIndex.cs) against a dictionary model: random adds, removes and free-style removals over a
/// small key space (so probe runs collide, wrap around the table's end and shift back on removal), through growth.
/// </summary>
public sealed class RootIndexTests
{
    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void RandomAddsRemovesAndFreesAgreeWithADictionaryModelThroughGrowth(int seed)
    {
        var random = new Random(seed);
        using var index = new RootIndex();
        var model = new Dictionary<(ulong Key, int Client), (int Handle, long Stamp)>();
        long stamp = 0;
        int handle = 0;
        for (int step = 0; step < 60_000; step++)
        {
            // Keys cluster on few home buckets early (small space), then spread as the index grows past 1024 buckets.
            ulong key = (ulong)random.Next(1, step < 20_000 ? 700 : 5_000) << 4;
            int client = random.Next(3);
            switch (random.Next(10))
            {
                case < 5:
                    bool added = index.TryAdd(key, client, handle, stamp);
                    Assert.Equal(!model.ContainsKey((key, client)), added);
                    if (added) model[(key, client)] = (handle++, stamp++);
                    break;
                case < 8:
                    bool removed = index.TryRemove(key, client, out int h);
                    Assert.Equal(model.Remove((key, client), out (int Handle, long Stamp) expected), removed);
                    if (removed) Assert.Equal(expected.Handle, h);
                    break;
                default:
                    long before = stamp - random.Next(0, 50);   // a free that started a little while ago
                    while (index.TryRemoveOlder(key, before, out int c, out int fh))
                    {
                        Assert.True(model.Remove((key, c), out (int Handle, long Stamp) e), $"removed ({key}, {c}) the model does not hold");
                        Assert.Equal(e.Handle, fh);
                        Assert.True(e.Stamp < before, $"removed a root added at {e.Stamp}, after the free began at {before}");
                    }

                    Assert.DoesNotContain(model, kv => kv.Key.Key == key && kv.Value.Stamp < before);
                    break;
            }

            Assert.Equal(model.Count, index.Count);
        }

        foreach (((ulong key, int client), _) in model)
        {
            Assert.True(index.Contains(key, client));
        }

        for (int c = 0; c < 3; c++)
        {
            Assert.Equal(model.Where(kv => kv.Key.Client == c).Select(kv => (kv.Key.Key, kv.Value.Handle)).OrderBy(e => e),
                index.EntriesOf(c).OrderBy(e => e));
        }
    }

    [Fact]
    public void ZeroIsNeverRooted() =>
        Assert.Throws<ArgumentOutOfRangeException>(() => new RootIndex().TryAdd(0, 0, 0, 0));
}
