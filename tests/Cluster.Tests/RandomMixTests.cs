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
        byte[] bytes = new byte[length];
        ulong state = p.Value * 0x9E3779B97F4A7C15UL;
        for (int i = 0; i < length; i++)
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
        NodeInfo[] nodes = await _heap.NodesAsync();
        Task<List<(HeapPointer Pointer, int Size)>>[] workers = Enumerable.Range(0, 6).Select(w => RunWorkerAsync(w, nodes)).ToArray();
        (HeapPointer Pointer, int Size)[] live = (await Task.WhenAll(workers)).SelectMany(x => x).ToArray();

        foreach ((HeapPointer pointer, int size) in live)
        {
            Assert.Equal(Cookie(pointer, Math.Min(size, 32)), await _heap.Router.ReadAsync(pointer, Math.Min(size, 32)));
        }

        await _heap.AssertVerifiedAsync();
        Assert.All(await _heap.Router.FreeBatchAsync([.. live.Select(l => l.Pointer)]), Assert.Null);
        foreach (NodeInfo node in nodes)
        {
            for (int p = 0; p < 2; p++)
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
        for (int step = 0; step < 300; step++)
        {
            int op = random.Next(10);
            if (op < 5 || live.Count == 0)
            {
                NodeInfo node = nodes[random.Next(nodes.Length)];
                int size = sizes[random.Next(sizes.Length)];
                ObjectKind kind = random.Next(2) == 0 ? ObjectKind.Noscan : ObjectKind.Pointer;
                int count = random.Next(1, 20);
                MallocBatchResult batch = await _heap.MCache(node.Name, worker % 2).MallocBatchAsync(count, size, kind);
                Assert.Null(batch.Error);
                WriteRequest[] writes = batch.Pointers.Select(p => new WriteRequest(p, Cookie(p, Math.Min(size, 32)))).ToArray();
                foreach (IGrouping<int, WriteRequest> group in writes.GroupBy(w => w.Pointer.Slot))
                {
                    IHeapNodeGrain owner = await _heap.Router.ResolveAsync(group.First().Pointer);
                    Assert.All(await owner.WriteBatchAsync([.. group]), Assert.Null);
                }

                live.AddRange(batch.Pointers.Select(p => (p, size)));
            }
            else if (op < 8)
            {
                (HeapPointer pointer, int size) = live[random.Next(live.Count)];
                int length = Math.Min(size, 32);
                Assert.Equal(Cookie(pointer, length), await _heap.Router.ReadAsync(pointer, length));
            }
            else
            {
                int index = random.Next(live.Count);
                (HeapPointer pointer, int size) = live[index];
                live[index] = live[^1];
                live.RemoveAt(live.Count - 1);
                int length = Math.Min(size, 32);
                Assert.Equal(Cookie(pointer, length), await _heap.Router.ReadAsync(pointer, length));
                await _heap.Router.FreeAsync(pointer);
            }
        }

        return live;
    }
}
