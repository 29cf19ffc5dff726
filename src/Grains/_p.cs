namespace ClusterHeap.Grains; internal static class Placeholder { }
