using System.Net;
using System.Net.Sockets;
using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Connect;

/// <summary>host:port parsing and free loopback ports.</summary>
public static class Endpoints
{
    public static bool TryParse(string text, out (string Host, int Port) endpoint)
    {
        endpoint = default;
        int colon = text.LastIndexOf(':');
        if (colon <= 0 || !int.TryParse(text.AsSpan(colon + 1), out int port) || port is < 1 or > 65535) return false;
        endpoint = (text[..colon], port);
        return true;
    }

    public static (string Host, int Port) Parse(string text, string what) =>
        TryParse(text, out (string Host, int Port) endpoint) ? endpoint : throw new UsageException($"{what}: '{text}' is not host:port");

    /// <summary>Resolves host:port to an IP endpoint (names through DNS).</summary>
    public static IPEndPoint Resolve(string text, string what)
    {
        (string? host, int port) = Parse(text, what);
        if (IPAddress.TryParse(host, out IPAddress? ip)) return new IPEndPoint(ip, port);
        IPAddress[] found = Dns.GetHostAddresses(host);
        IPAddress? v4 = found.FirstOrDefault(a => a.AddressFamily == AddressFamily.InterNetwork) ?? found.FirstOrDefault();
        return v4 is null ? throw new UsageException($"{what}: cannot resolve '{host}'") : new IPEndPoint(v4, port);
    }

    /// <summary>
    /// <paramref name="count"/> distinct loopback ports free right now (the OS picks them), so two clients on one
    /// machine never collide. A port could be taken between here and the silo binding it; that is reported as a start failure.
    /// </summary>
    public static int[] FreePorts(int count)
    {
        var listeners = new List<TcpListener>();
        try
        {
            for (int i = 0; i < count; i++)
            {
                var l = new TcpListener(IPAddress.Loopback, 0);
                l.Start();
                listeners.Add(l);
            }
            return [.. listeners.Select(l => ((IPEndPoint)l.LocalEndpoint).Port)];
        }
        finally
        {
            foreach (TcpListener l in listeners) l.Stop();
        }
    }
}
