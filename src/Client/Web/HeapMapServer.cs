using System.Net;
using System.Reflection;
using System.Text;
using ClusterHeap.Client.Connect;

namespace ClusterHeap.Client.Web;

/// <summary>
/// The web heap map's HTTP side (a plain <see cref="HttpListener"/>, no web framework): <c>/</c> is the
/// page (<c>heapmap.html</c>, embedded in the client), <c>/events</c> the server-sent event stream of
/// <see cref="HeapMapFeed"/> frames, one <c>frame</c> event each. Listens on 127.0.0.1 unless told
/// otherwise.
/// </summary>
public sealed class HeapMapServer : IAsyncDisposable
{
    private readonly HttpListener _listener = new();
    private readonly HeapMapFeed _feed;
    private readonly CancellationTokenSource _stop = new();
    private readonly byte[] _page;
    private readonly Task _accept;
    private readonly List<Task> _streams = [];
    private readonly Lock _streamsLock = new();

    private HeapMapServer(ClusterConnection connection, string host, int port)
    {
        _feed = new HeapMapFeed(connection);
        _page = LoadPage();
        Url = $"http://{(host is "*" or "+" ? "127.0.0.1" : host)}:{port}/";
        _listener.Prefixes.Add($"http://{host}:{port}/");
        if (host == "127.0.0.1")
        {
            _listener.Prefixes.Add($"http://localhost:{port}/"); // HttpListener matches the Host header by name
        }

        _listener.Start();
        _accept = Task.Run(AcceptAsync);
    }

    /// <summary>Where the page is (http://HOST:PORT/).</summary>
    public string Url { get; }

    /// <summary>The frames' source (tests read its counters).</summary>
    public HeapMapFeed Feed => _feed;

    /// <summary>Serves the heap map of <paramref name="connection"/> on <paramref name="host"/>:<paramref name="port"/> ("*" = every address).</summary>
    /// <exception cref="HttpListenerException">The port is taken or may not be used.</exception>
    public static HeapMapServer Start(ClusterConnection connection, int port, string host = "127.0.0.1") => new(connection, host, port);

    private static byte[] LoadPage()
    {
        using Stream stream = Assembly.GetExecutingAssembly().GetManifestResourceStream("ClusterHeap.Client.Web.heapmap.html")
            ?? throw new InvalidOperationException("heapmap.html is not embedded in the client");
        using var memory = new MemoryStream();
        stream.CopyTo(memory);
        return memory.ToArray();
    }

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception e) when (e is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return; // the listener stopped
            }

            string path = context.Request.Url?.AbsolutePath ?? "/";
            switch (path)
            {
                case "/" or "/index.html":
                    await RespondAsync(context.Response, 200, "text/html; charset=utf-8", _page);
                    break;
                case "/events":
                    var stream = Task.Run(() => StreamAsync(context.Response));
                    lock (_streamsLock)
                    {
                        _streams.RemoveAll(t => t.IsCompleted);
                        _streams.Add(stream);
                    }

                    break;
                default:
                    await RespondAsync(context.Response, 404, "text/plain; charset=utf-8", Encoding.UTF8.GetBytes($"no such page: {path}\n"));
                    break;
            }
        }
    }

    private static async Task RespondAsync(HttpListenerResponse response, int status, string type, byte[] body)
    {
        try
        {
            response.StatusCode = status;
            response.ContentType = type;
            response.ContentLength64 = body.Length;
            await response.OutputStream.WriteAsync(body);
            response.Close();
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
        {
            // the browser went away
        }
    }

    /// <summary>One page's event stream: frames as they come, until the page or the server goes.</summary>
    private async Task StreamAsync(HttpListenerResponse response)
    {
        using HeapMapFeed.Watcher watcher = _feed.Watch();
        try
        {
            response.StatusCode = 200;
            response.ContentType = "text/event-stream";
            response.Headers["Cache-Control"] = "no-cache";
            response.SendChunked = true;
            Stream output = response.OutputStream;
            // A dropped stream (the page fell behind, or the server restarted) is retried after 500 ms.
            await output.WriteAsync("retry: 500\n\n"u8.ToArray(), _stop.Token);
            await output.FlushAsync(_stop.Token);
            await foreach (string frame in watcher.Frames.ReadAllAsync(_stop.Token))
            {
                await output.WriteAsync(Encoding.UTF8.GetBytes($"event: frame\ndata: {frame}\n\n"), _stop.Token);
                await output.FlushAsync(_stop.Token);
            }
        }
        catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException or OperationCanceledException)
        {
            // the page closed, or the server is stopping
        }
        finally
        {
            try
            {
                response.Close();
            }
            catch (Exception e) when (e is HttpListenerException or IOException or ObjectDisposedException)
            {
                // already gone
            }
        }
    }

    public async ValueTask DisposeAsync()
    {
        await _stop.CancelAsync();
        await _feed.DisposeAsync();
        _listener.Stop();
        await _accept;
        Task[] streams;
        lock (_streamsLock)
        {
            streams = [.. _streams];
        }

        await Task.WhenAll(streams);
        _listener.Close();
        _stop.Dispose();
    }
}
