namespace ClusterHeap.Contracts;

/// <summary>How ClusterHeap grains are keyed.</summary>
public static class GrainKeys
{
    /// <summary>The central heap grain's key.</summary>
    public const long CentralHeap = 0;

    /// <summary>The mcache grain of processor <paramref name="p"/> on <paramref name="node"/>: <c>"node/P"</c>.</summary>
    public static string MCache(string node, int p) => $"{node}/{p}";

    /// <summary>Splits an mcache key into node and P; false when it is not <c>"node/P"</c>.</summary>
    public static bool TryParseMCache(string key, out string node, out int p)
    {
        int slash = key.LastIndexOf('/');
        node = slash > 0 ? key[..slash] : "";
        p = -1;
        return slash > 0 && int.TryParse(key.AsSpan(slash + 1), out p) && p >= 0;
    }

    /// <summary>The node a pinned grain's key names: the whole key for a heap node grain, the part before "/P" for an mcache.</summary>
    public static string NodeOf(string key) => TryParseMCache(key, out string? node, out _) ? node : key;
}
