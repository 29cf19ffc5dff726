using CsCheck;

namespace ClusterHeap.Heap.Tests;

/// <summary>
/// Random alloc / free / write / read sequences over mixed sizes against a model (address → size and stamp):
/// the verifier stays clean, every live object's bytes match the model, no two live objects overlap. Frees go
/// through the owner's mcache (free stacks) or the node heap (any thread's path), at random.
/// </summary>
public unsafe class PropertyTests
{
    private readonly record struct Op(int Kind, int Size, int Pick);

    private static readonly Gen<Op> GenOp = Gen.Select(Gen.Int[0, 99], Gen.Int[0, 1_000_000], Gen.Int[0, int.MaxValue], (k, s, p) => new Op(k, s, p));

    private sealed record Live(long Size, byte Stamp);

    private static (nuint Size, bool Noscan, bool Typed) PickSize(int r)
    {
        int bucket = r % 10;
        int v = r / 10;
        return bucket switch
        {
            < 4 => ((nuint)(1 + v % 15), true, false),                        // tiny
            < 6 => ((nuint)(1 + v % 1024), v % 2 == 0, false),                // small, scan or noscan
            < 8 => ((nuint)(1 + v % 32768), v % 3 == 0, false),               // any small
            8 => ((nuint)(8 + v % 4096), false, true),                        // typed scan
            _ => ((nuint)(32769 + v % 200_000), v % 2 == 0, false),           // large
        };
    }

    private static void CheckModel(NodeHeap heap, Dictionary<nuint, Live> model)
    {
        TestHeap.AssertVerifies(heap);
        nuint prevEnd = 0;
        foreach ((nuint p, Live? o) in model.OrderBy(kv => kv.Key))
        {
            Assert.True(p >= prevEnd, $"object {TestHeap.Hex(p)} overlaps the one before it");
            prevEnd = p + (nuint)o.Size;
            Assert.True(TestHeap.AllBytesAre(p, o.Size, o.Stamp), $"object {TestHeap.Hex(p)} of {o.Size} bytes lost its stamp {o.Stamp}");
            Assert.Equal(PointerError.None, heap.TryFindObject(p, out HeapObject h));
            Assert.True(h.Size >= o.Size);
        }
        MemStats s = heap.ReadMemStats();
        Assert.Equal(model.Count, s.HeapObjects);
        Assert.Equal(s.HeapSys, s.HeapIdle + s.HeapInuse);
    }

    private static void Run(Op[] ops, int checkEvery)
    {
        using NodeHeap heap = TestHeap.Create(arena: 128L << 20);
        MCache c = heap.CreateCache();
        var model = new Dictionary<nuint, Live>();
        var order = new List<nuint>();
        byte stamp = 0;
        for (int step = 0; step < ops.Length; step++)
        {
            Op op = ops[step];
            if (op.Kind < 45 || order.Count == 0)
            {
                (nuint size, bool noscan, bool typed) = PickSize(op.Size);
                bool needzero = op.Pick % 7 != 0;
                nuint p = typed ? c.MallocTyped(size, [(ulong)op.Pick], needzero) : c.Malloc(size, noscan, needzero);
                Assert.False(model.ContainsKey(p), $"{TestHeap.Hex(p)} handed out while live");
                if (needzero) Assert.True(TestHeap.AllBytesAre(p, (long)size, 0), $"fresh object {TestHeap.Hex(p)} of {size} bytes not zero");
                stamp = (byte)(stamp % 250 + 1);
                TestHeap.Fill(p, (long)size, stamp);
                model[p] = new Live((long)size, stamp);
                order.Add(p);
            }
            else
            {
                int i = op.Pick % order.Count;
                nuint p = order[i];
                Live o = model[p];
                if (op.Kind < 75)
                {
                    // The owner's free (onto its free stack when small) or any thread's free (under the locks).
                    bool owner = op.Kind < 60;
                    Assert.Equal(PointerError.None, owner ? c.TryFree(p) : heap.TryFree(p));
                    Assert.NotEqual(PointerError.None, heap.TryFree(p));      // and never twice, either way
                    Assert.NotEqual(PointerError.None, c.TryFree(p));
                    model.Remove(p);
                    order[i] = order[^1];
                    order.RemoveAt(order.Count - 1);
                }
                else if (op.Kind < 88)
                {
                    stamp = (byte)(stamp % 250 + 1);
                    byte[] data = new byte[o.Size];
                    Array.Fill(data, stamp);
                    heap.Write(p, data);
                    model[p] = o with { Stamp = stamp };
                }
                else if (op.Kind < 98)
                {
                    byte[] data = new byte[o.Size];
                    heap.Read(p, data);
                    Assert.True(data.AsSpan().IndexOfAnyExcept(o.Stamp) < 0);
                }
                else
                {
                    heap.ReleaseCache(c);                                     // fold cached frees, start over
                    c = heap.CreateCache();
                }
            }
            if (step % checkEvery == 0) CheckModel(heap, model);
        }
        CheckModel(heap, model);
        foreach (nuint p in order) heap.Free(p);
        heap.ReleaseCache(c);
        TestHeap.AssertVerifies(heap);
        MemStats s = heap.ReadMemStats();
        Assert.Equal(0, s.HeapObjects);
        Assert.Equal(0, s.HeapAlloc);
        Assert.Equal(0, s.HeapInuse);
    }

    [Fact]
    public void RandomAllocFreeWriteReadSequencesMatchTheModel() =>
        GenOp.Array[50, 600].Sample(ops => Run(ops, checkEvery: 10), iter: 40, threads: 1);

    [Fact]
    public void LongSeededRunMatchesTheModel()
    {
        // One long sequence (xorshift, fixed seed) so spans fill, refill, empty and coalesce many times over.
        ulong x = 0x9E3779B97F4A7C15;
        ulong Next() { x ^= x << 13; x ^= x >> 7; x ^= x << 17; return x; }
        var ops = new Op[10_000];
        for (int i = 0; i < ops.Length; i++) ops[i] = new Op((int)(Next() % 100), (int)(Next() % 1_000_000), (int)(Next() & int.MaxValue));
        Run(ops, checkEvery: 500);
    }
}
