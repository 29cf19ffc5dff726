using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Stress;

/// <summary>A live object of a stress run: where it is, how many bytes were asked for, and its cookie's sequence number.</summary>
public readonly record struct Obj(HeapPointer Pointer, int Size, ulong Seq);
