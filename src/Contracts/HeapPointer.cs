namespace ClusterHeap.Contracts;

/// <summary>
/// The pointer a client holds: a real arena address plus the generation of the node that owns it.
/// </summary>
/// <remarks>
/// Bit layout (see docs/DESIGN.md §5, "Addresses"):
/// <code>
///  63            48 47                                             0
/// [16-bit generation][48-bit address: the object's address in the owner's arena]
/// </code>
/// x86-64 user addresses use 48 bits, so the top 16 are free to name the owner slot's generation.
/// The slot is recovered from the address alone: arenas are reserved at
/// <c>hint(slot) = slot &lt;&lt; 40 | 0x00c000000000</c>, so <c>slot = (address - 0x00c000000000) &gt;&gt; 40</c>.
/// A pointer whose generation does not match the slot's live owner is "node gone", never
/// resolved to another node's object. Generation 0 is never assigned, so <see cref="Null"/> is invalid.
/// </remarks>
[GenerateSerializer, Immutable, Alias("ClusterHeap.HeapPointer")]
public readonly record struct HeapPointer([property: Id(0)] ulong Value)
{
    /// <summary>Bits of the address part.</summary>
    public const int AddressBits = 48;
    /// <summary>Mask of the address part.</summary>
    public const ulong AddressMask = (1UL << AddressBits) - 1;
    /// <summary>Slots whose whole reservation stays below 2^47 (user space): 0x7f &lt;&lt; 40 + 545 GiB would not.</summary>
    public const int MaxSlots = Heap.HeapLayout.MaxSlot - 1;

    /// <summary>The invalid pointer (generation 0, address 0).</summary>
    public static HeapPointer Null => default;

    /// <summary>The generation of the owner slot when the object was allocated.</summary>
    public ushort Generation => (ushort)(Value >> AddressBits);

    /// <summary>The real address in the owner's arena.</summary>
    public ulong Address => Value & AddressMask;

    /// <summary>The owner slot, or -1 when the address lies below the first arena.</summary>
    public int Slot => SlotOf(Address);

    /// <summary>True for <see cref="Null"/>.</summary>
    public bool IsNull => Value == 0;

    /// <summary>Builds a pointer from an owner generation and an arena address.</summary>
    public static HeapPointer Create(ushort generation, ulong address)
    {
        if ((address & ~AddressMask) != 0)
        {
            throw new ArgumentOutOfRangeException(nameof(address), $"0x{address:x} does not fit in {AddressBits} bits");
        }

        return new HeapPointer(((ulong)generation << AddressBits) | address);
    }

    /// <summary>The slot an arena address belongs to, or -1 outside every slot's window (the node heap's own <see cref="Heap.HeapLayout.SlotOf"/>).</summary>
    public static int SlotOf(ulong address) => Heap.HeapLayout.SlotOf(address);

    /// <summary>The hint (first address) of a slot's reservation (the node heap's own <see cref="Heap.HeapLayout.HintFor"/>).</summary>
    public static ulong HintOf(int slot) => Heap.HeapLayout.HintFor(slot);

    /// <summary>The same owner and generation, <paramref name="offset"/> bytes further (an interior pointer).</summary>
    public HeapPointer Offset(long offset) => Create(Generation, (ulong)((long)Address + offset));

    /// <summary>Hex, the full 64 bits: <c>0x0003_00c0_0000_2000</c> is printed as <c>0x000300c000002000</c>.</summary>
    public override string ToString() => $"0x{Value:x16}";

    /// <summary>Parses the <see cref="ToString"/> form (with or without <c>0x</c>, underscores allowed).</summary>
    public static bool TryParse(string? text, out HeapPointer pointer)
    {
        pointer = default;
        if (string.IsNullOrWhiteSpace(text))
        {
            return false;
        }

        string s = text.Trim().Replace("_", "", StringComparison.Ordinal);
        if (s.StartsWith("0x", StringComparison.OrdinalIgnoreCase))
        {
            s = s[2..];
        }

        if (!ulong.TryParse(s, System.Globalization.NumberStyles.HexNumber, null, out ulong value))
        {
            return false;
        }

        pointer = new HeapPointer(value);
        return true;
    }
}
