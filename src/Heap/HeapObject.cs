namespace ClusterHeap.Heap;

/// <summary>What an address names in the heap: an object's start, size (its slot or span) and class.</summary>
public readonly record struct HeapObject(nuint Base, long Size, int SizeClass, bool Noscan, bool Tiny);
