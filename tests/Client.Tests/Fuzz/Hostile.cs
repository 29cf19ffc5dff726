using System.Globalization;
using ClusterHeap.Client.Stress;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests.Fuzz;

/// <summary>
/// Random and hostile input for the fuzz harness: absurd numbers, sizes and offsets, malformed and foreign
/// pointers, broken quoting. Seeded (xorshift64), so a failing run is replayed with its seed.
/// </summary>
public sealed class Hostile(ulong seed)
{
    private XorShift _rng = new(seed);

    /// <summary>Pointers the harness allocated and still holds (valid ones to aim at, and to free at the end).</summary>
    public List<HeapPointer> Live { get; } = [];

    /// <summary>Pointers it freed (double frees, use after free).</summary>
    public List<HeapPointer> Freed { get; } = [];

    public ulong Next() => _rng.Next();

    public int Below(int n) => _rng.Below(n);

    public bool Chance(int percent) => Below(100) < percent;

    public T Pick<T>(IReadOnlyList<T> items) => items[Below(items.Count)];

    private static readonly string[] Numbers =
    [
        "0", "1", "-1", "7", "8", "16", "64", "4095", "32768", "32769", "9223372036854775807", "9223372036854775808",
        "-9223372036854775808", "18446744073709551616", "4611686018427387904", "1e308", "NaN", "Infinity", "1.5", "0.1",
        "00000000000000000000001", "0x10", "1_000", "", " ", "--", "-", "+5",
    ];

    private static readonly string[] Sizes =
    [
        "0", "1", "8", "15", "16", "1000", "1KiB", "32KiB", "32769", "1MiB", "64MiB", "1GiB", "300TiB", "8EiB",
        "1.5GiB", "0.5", "12XB", "kib", "-8", "99999999999999999999", "1tb", "2G",
    ];

    private static readonly string[] Words =
    [
        "scan", "noscan", "on", "at", "node0", "node1", "nodeX", "\"\"", "\"unterminated", "\"a b\"", "\\", "\"\\\"\"", "#comment",
        "héllo", "\u0000", "\u202e", "0x", "0xZZ", "0x0102", "0x" + new string('f', 4096), new string('a', 10_000), "--svg", "--width", "none", "off",
    ];

    /// <summary>A number, size or word an attacker would try.</summary>
    public string Token() => Below(5) switch
    {
        0 => Pick(Numbers),
        1 => Pick(Sizes),
        2 => Pick(Words),
        3 => Pointer().ToString(),
        _ => Random64().ToString("x", CultureInfo.InvariantCulture),
    };

    public ulong Random64() => Next();

    /// <summary>A pointer: live, interior, freed, of another slot or generation, near the zero base, or plain random.</summary>
    public HeapPointer Pointer()
    {
        switch (Below(8))
        {
            case 0 when Live.Count > 0: return Pick(Live);
            case 1 when Live.Count > 0: return new HeapPointer(Pick(Live).Value + (ulong)(1 + Below(64)));
            case 2 when Freed.Count > 0: return Pick(Freed);
            case 3 when Live.Count > 0: return new HeapPointer(Pick(Live).Value ^ (1UL << (40 + Below(7))));   // another slot
            case 4 when Live.Count > 0: return new HeapPointer(Pick(Live).Value + (1UL << 48));                 // another generation
            case 5: return HeapPointer.Create((ushort)Below(4), HeapPointer.HintOf(Below(4)) + (ulong)Below(1 << 20));
            case 6: return HeapPointer.Null;
            default: return new HeapPointer(Random64());
        }
    }

    /// <summary>A size as a grain sees it: negative, zero, small, large, absurd.</summary>
    public long SizeValue() => Below(8) switch
    {
        0 => -1 - Below(1000),
        1 => 0,
        2 => 1 + Below(32768),
        3 => 32768 + Below(1 << 20),
        4 => long.MaxValue - Below(10),
        5 => long.MinValue,
        6 => 1L << (40 + Below(20)),
        _ => 1 + Below(2048),
    };

    /// <summary>A length or count as a grain sees it.</summary>
    public int IntValue() => Below(6) switch
    {
        0 => -1 - Below(1000),
        1 => 0,
        2 => int.MaxValue - Below(10),
        3 => int.MinValue,
        4 => 1 + Below(1 << 16),
        _ => 1 + Below(64),
    };
}
