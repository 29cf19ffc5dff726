using System.Runtime.InteropServices;

namespace ClusterHeap.Heap;

/// <summary>
/// The OS memory layer (Go's sysReserve / sysMap / sysUnused / sysFree) over libc's mmap, mprotect,
/// madvise and munmap. Every call reports errno in its exception; byte counters elsewhere move only
/// after the call here has succeeded.
/// </summary>
internal static unsafe partial class OsMemory
{
    private const int ProtNone = 0x0;
    private const int ProtRead = 0x1;
    private const int ProtWrite = 0x2;
    private const int MapPrivate = 0x02;
    private const int MapAnonymous = 0x20;
    private const int MapNoReserve = 0x4000;
    private const int MadvDontNeed = 4;
    private static readonly nint MapFailed = -1;

    /// <summary>OS page size; the heap's 8 KiB pages are two of these on x86-64.</summary>
    public static readonly int OsPageSize = Environment.SystemPageSize;

    /// <summary>
    /// Reserves <paramref name="size"/> bytes of address space, PROT_NONE, at <paramref name="hint"/> if the
    /// kernel agrees. The kernel may place it elsewhere: the caller checks the address it got.
    /// Returns 0 and sets <paramref name="errno"/> on failure.
    /// </summary>
    public static nuint Reserve(nuint hint, nuint size, out int errno)
    {
        nint p = Mmap((void*)hint, size, ProtNone, MapPrivate | MapAnonymous | MapNoReserve, -1, 0);
        if (p == MapFailed)
        {
            errno = Marshal.GetLastPInvokeError();
            return 0;
        }
        errno = 0;
        return (nuint)p;
    }

    /// <summary>Makes [addr, addr+size) readable and writable (sysMap). The pages read as zero until written.</summary>
    public static void Commit(nuint addr, nuint size)
    {
        if (Mprotect((void*)addr, size, ProtRead | ProtWrite) != 0)
        {
            Throw("mprotect(PROT_READ|PROT_WRITE)", addr, size);
        }
    }

    /// <summary>Hands the pages back to the OS (sysUnused): they stay mapped and read as zero afterwards.</summary>
    public static void Release(nuint addr, nuint size)
    {
        if (Madvise((void*)addr, size, MadvDontNeed) != 0)
        {
            Throw("madvise(MADV_DONTNEED)", addr, size);
        }
    }

    /// <summary>Unmaps a reservation (sysFree).</summary>
    public static void Free(nuint addr, nuint size)
    {
        if (Munmap((void*)addr, size) != 0)
        {
            Throw("munmap", addr, size);
        }
    }

    /// <summary>Counts how many OS pages of [addr, addr+size) are resident (mincore). For tests and the shell.</summary>
    public static long ResidentBytes(nuint addr, nuint size)
    {
        nuint pages = (size + (nuint)OsPageSize - 1) / (nuint)OsPageSize;
        byte[] vec = new byte[(int)pages];
        fixed (byte* v = vec)
        {
            if (Mincore((void*)addr, size, v) != 0)
            {
                Throw("mincore", addr, size);
            }
        }
        long resident = 0;
        foreach (byte b in vec)
        {
            resident += b & 1;
        }
        return resident * OsPageSize;
    }

    private static void Throw(string call, nuint addr, nuint size)
    {
        int errno = Marshal.GetLastPInvokeError();
        throw new OsMemoryException(call, addr, size, errno);
    }

    [LibraryImport("libc", EntryPoint = "mmap", SetLastError = true)]
    private static partial nint Mmap(void* addr, nuint length, int prot, int flags, int fd, nint offset);

    [LibraryImport("libc", EntryPoint = "mprotect", SetLastError = true)]
    private static partial int Mprotect(void* addr, nuint length, int prot);

    [LibraryImport("libc", EntryPoint = "madvise", SetLastError = true)]
    private static partial int Madvise(void* addr, nuint length, int advice);

    [LibraryImport("libc", EntryPoint = "munmap", SetLastError = true)]
    private static partial int Munmap(void* addr, nuint length);

    [LibraryImport("libc", EntryPoint = "mincore", SetLastError = true)]
    private static partial int Mincore(void* addr, nuint length, byte* vec);
}

/// <summary>An OS memory call failed; carries the call, the range and errno.</summary>
public sealed class OsMemoryException(string call, nuint address, nuint size, int errno)
    : Exception($"{call} at 0x{address:x} for {size} bytes failed: errno {errno} ({Marshal.GetPInvokeErrorMessage(errno)})")
{
    public string Call { get; } = call;
    public nuint Address { get; } = address;
    public nuint Size { get; } = size;
    public int Errno { get; } = errno;
}
