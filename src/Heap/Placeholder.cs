namespace ClusterHeap.Heap; internal static class Placeholder { }
