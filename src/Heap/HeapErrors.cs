using System.Diagnostics.CodeAnalysis;

namespace ClusterHeap.Heap;

/// <summary>Why a pointer handed to Free, Read or Write was refused. The heap is untouched in every case.</summary>
public enum PointerError : byte
{
    None = 0,
    /// <summary>The address is not inside this node's arena (foreign, null, or another node's).</summary>
    OutsideArena,
    /// <summary>The address is in the arena but in pages no span is using (free, released, or never grown into).</summary>
    NotInUse,
    /// <summary>The address points inside an object, not at its start.</summary>
    Interior,
    /// <summary>The object at this address was freed already (double free).</summary>
    AlreadyFreed,
    /// <summary>A slot start that holds no object and has not held one since its span was set up.</summary>
    NeverAllocated,
    /// <summary>A tiny-object address (inside a 16-byte block) with no live tiny object starting there.</summary>
    TinyNotLive,
    /// <summary>A tiny object that was freed already.</summary>
    TinyAlreadyFreed,
    /// <summary>A read or write range that runs past the end of its object.</summary>
    OutOfBounds,
    /// <summary>A read or write of negative length, or a range that wraps around.</summary>
    BadLength,
}

/// <summary>Why an allocation could not be satisfied.</summary>
public enum OutOfMemoryReason : byte
{
    /// <summary>The reserved arena has no pages left.</summary>
    ArenaExhausted,
    /// <summary>Growing would map more than the heap's growth limit (the cluster's grant to this node).</summary>
    GrowthLimit,
}

public static class PointerErrors
{
    /// <summary>A sentence a user can act on.</summary>
    public static string Describe(PointerError error, ulong address) => error switch
    {
        PointerError.None => $"0x{address:x} is valid",
        PointerError.OutsideArena => $"0x{address:x} is not inside this node's arena",
        PointerError.NotInUse => $"0x{address:x} is in arena pages that hold no objects (free or never allocated)",
        PointerError.Interior => $"0x{address:x} points inside an object, not at its start",
        PointerError.AlreadyFreed => $"the object at 0x{address:x} was already freed",
        PointerError.NeverAllocated => $"no object was ever allocated at 0x{address:x}",
        PointerError.TinyNotLive => $"no live tiny object starts at 0x{address:x}",
        PointerError.TinyAlreadyFreed => $"the tiny object at 0x{address:x} was already freed",
        PointerError.OutOfBounds => $"the range at 0x{address:x} runs past the end of its object",
        PointerError.BadLength => $"the range at 0x{address:x} has a negative or wrapping length",
        _ => $"0x{address:x}: {error}",
    };
}

/// <summary>A pointer was refused by Free, Read or Write; <see cref="Reason"/> says why.</summary>
public sealed class InvalidPointerException(PointerError reason, ulong address)
    : Exception(PointerErrors.Describe(reason, address))
{
    public PointerError Reason { get; } = reason;
    public ulong Address { get; } = address;
}

/// <summary>An allocation failed for lack of memory; names the limit that was hit and the figures.</summary>
public sealed class HeapOutOfMemoryException(OutOfMemoryReason reason, long requested, long limit, long mapped)
    : Exception(reason == OutOfMemoryReason.GrowthLimit
        ? $"out of memory: allocating {requested} bytes needs the heap to grow past its growth limit of {limit} bytes ({mapped} mapped)"
        : $"out of memory: allocating {requested} bytes needs more arena than the {limit}-byte arena has left ({mapped} mapped)")
{
    public OutOfMemoryReason Reason { get; } = reason;
    public long Requested { get; } = requested;
    public long Limit { get; } = limit;
    public long Mapped { get; } = mapped;
}

/// <summary>A size the allocator cannot serve at all (negative, or larger than the whole arena).</summary>
public sealed class InvalidSizeException(string message) : ArgumentOutOfRangeException("size", message);

/// <summary>mallocinit could not set up the heap (bad options, or no reservation to be had).</summary>
public sealed class HeapInitException(string message) : Exception(message);

internal static class HeapThrow
{
    [DoesNotReturn]
    public static void InvalidPointer(PointerError reason, ulong address) => throw new InvalidPointerException(reason, address);

    [DoesNotReturn]
    public static void OutOfMemory(OutOfMemoryReason reason, long requested, long limit, long mapped) =>
        throw new HeapOutOfMemoryException(reason, requested, limit, mapped);

    [DoesNotReturn]
    public static void InvalidSize(string message) => throw new InvalidSizeException(message);
}
