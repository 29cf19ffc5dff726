namespace ClusterHeap.Silo; internal static class Program { private static int Main() => 0; }
