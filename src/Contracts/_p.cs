namespace ClusterHeap.Contracts; internal static class Placeholder { }
