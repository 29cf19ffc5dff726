using ClusterHeap.Contracts;

namespace ClusterHeap.Cluster.Tests;

/// <summary>
/// A seeded random mix of allocations, writes, reads and frees from several concurrent workers over
/// every node (the small one leases), each object stamped with a cookie derived from its pointer:
/// every read and the final sweep check the data, not just survival.
/// </summary>
[Collection(SharedClusterCollection.Name)]
public sealed class RandomMixTests(SharedClusterFixture fixture)
{
    private readonly HeapCluster _heap = fixture.Heap;

    private static byte[] Cookie(HeapPointer p, int length)
    {
        var bytes = new byte[length];
        var state = p.Value * 0x9E3779B97F4A7C15UL;
        for (var i = 0; i < length; i++)
        {
            state ^= state >> 29;
            state *= 0xBF58476D1CE4E5B9UL;
            bytes[i] = (byte)state;
        }

        return bytes;
    }

    [Fact]
    public async Task ARandomMixOverNodesAndWorkersKeepsEveryCookie()
    {
        var nodes = await _heap.NodesAsync();
        var workers = Enumerable.Range(0, 6).Select(w => RunWorkerAsync(w, nodes)).ToArray();
        var live = (await Task.WhenAll(workers)).SelectMany(x => x).ToArray();

        foreach (var (pointer, size) in live)
        {
            Assert.Equal(Cookie(pointer, Math.Min(size, 32)), await _heap.Router.ReadAsync(pointer, Math.Min(size, 32)));
        }

        await _heap.AssertVerifiedAsync();
        Assert.All(await _heap.Router.FreeBatchAsync([.. live.Select(l => l.Pointer)]), Assert.Null);
        foreach (var node in nodes)
        {
            for (var p = 0; p < 2; p++)
            {
                await _heap.MCache(node.Name, p).ReturnLeasesAsync();
            }
        }

        await _heap.AssertVerifiedAsync();
    }

    private async Task<List<(HeapPointer Pointer, int Size)>> RunWorkerAsync(int worker, NodeInfo[] nodes)
    {
        var random = new Random(1234 + worker);
        var live = new List<(HeapPointer Pointer, int Size)>();
        int[] sizes = [1, 8, 15, 16, 24, 100, 512, 1024, 3000, 8192, 20000, 40000];
        for (var step = 0; step < 300; step++)
        {
            var op = random.Next(10);
            if (op < 5 || live.Count == 0)
            {
                var node = nodes[random.Next(nodes.Length)];
                var size = sizes[random.Next(sizes.Length)];
                var kind = random.Next(2) == 0 ? ObjectKind.Scalar : ObjectKind.Pointer;
                var count = random.Next(1, 20);
                var batch = await _heap.MCache(node.Name, worker % 2).MallocBatchAsync(count, size, kind);
                Assert.Null(batch.Error);
                var writes = batch.Pointers.Select(p => new WriteRequest(p, Cookie(p, Math.Min(size, 32)))).ToArray();
                foreach (var group in writes.GroupBy(w => w.Pointer.Slot))
                {
                    var owner = await _heap.Router.ResolveAsync(group.First().Pointer);
                    Assert.All(await owner.WriteBatchAsync([.. group]), Assert.Null);
                }

                live.AddRange(batch.Pointers.Select(p => (p, size)));
            }
            else if (op < 8)
            {
                var (pointer, size) = live[random.Next(live.Count)];
                var length = Math.Min(size, 32);
                Assert.Equal(Cookie(pointer, length), await _heap.Router.ReadAsync(pointer, length));
            }
            else
            {
                var index = random.Next(live.Count);
                var (pointer, size) = live[index];
                live[index] = live[^1];
                live.RemoveAt(live.Count - 1);
                var length = Math.Min(size, 32);
                Assert.Equal(Cookie(pointer, length), await _heap.Router.ReadAsync(pointer, length));
                await _heap.Router.FreeAsync(pointer);
            }
        }

        return live;
    }
}
