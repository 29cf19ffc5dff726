using System.Diagnostics;
using System.Net.WebSockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;

namespace ClusterHeap.Client.Tests.Browser;

/// <summary>
/// A real headless Chromium driven over its DevTools protocol (a WebSocket, flattened sessions), for
/// tests that check what a page shows. Found at <c>$CLUSTERHEAP_CHROMIUM</c>, else Debian's
/// <c>/usr/bin/chromium</c> (package <c>chromium</c>) or another usual path. Each launch gets a fresh
/// profile folder, removed on dispose.
/// </summary>
public sealed class HeadlessChromium : IAsyncDisposable
{
    /// <summary>The variable naming the browser's executable.</summary>
    public const string PathVariable = "CLUSTERHEAP_CHROMIUM";

    private static readonly string[] UsualPaths = ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome", "/usr/bin/google-chrome-stable"];

    private readonly Process _process;
    private readonly DirectoryInfo _profile;
    private readonly ClientWebSocket _socket = new();
    private readonly Dictionary<int, TaskCompletionSource<JsonNode>> _pending = [];
    private readonly List<(string Session, string Method, TaskCompletionSource Fired)> _events = [];
    private readonly Lock _lock = new();
    private readonly SemaphoreSlim _send = new(1, 1);
    private readonly CancellationTokenSource _stop = new();
    private Task _receive = Task.CompletedTask;
    private int _nextId;

    private HeadlessChromium(Process process, DirectoryInfo profile)
    {
        _process = process;
        _profile = profile;
    }

    /// <summary>
    /// True when a missing browser must fail the test rather than skip it: in CI (<c>CI=true</c>, as
    /// .ci/run runs) or when <c>CLUSTERHEAP_REQUIRE_BROWSER=1</c>.
    /// </summary>
    public static bool Required =>
        string.Equals(Environment.GetEnvironmentVariable("CI"), "true", StringComparison.OrdinalIgnoreCase)
        || Environment.GetEnvironmentVariable("CLUSTERHEAP_REQUIRE_BROWSER") == "1";

    /// <summary>What to do when no browser is found.</summary>
    public const string Missing = "no headless Chromium: install Debian's chromium package (apt-get install -y chromium) or set "
        + PathVariable + " to a Chromium or Chrome executable";

    /// <summary>The browser's executable, or null when there is none.</summary>
    public static string? Find()
    {
        string? given = Environment.GetEnvironmentVariable(PathVariable);
        if (!string.IsNullOrWhiteSpace(given))
        {
            return File.Exists(given) ? given : null;
        }

        return UsualPaths.FirstOrDefault(File.Exists);
    }

    /// <summary>Starts the browser with remote debugging on a free port and connects to it.</summary>
    public static async Task<HeadlessChromium> LaunchAsync()
    {
        string? path = Find();
        Assert.True(path is not null, Missing);
        DirectoryInfo profile = Directory.CreateTempSubdirectory("clusterheap-chromium-");
        var start = new ProcessStartInfo(path!)
        {
            RedirectStandardError = true,
            RedirectStandardOutput = true,
            UseShellExecute = false,
        };
        foreach (string? arg in new[]
                 {
                     "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                     "--disable-background-networking", "--disable-component-update", "--disable-sync",
                     "--disable-background-timer-throttling", "--disable-renderer-backgrounding",
                     $"--user-data-dir={profile.FullName}", "--remote-debugging-port=0", "--window-size=1400,1000", "about:blank",
                 })
        {
            start.ArgumentList.Add(arg);
        }

        Process process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {path}");
        var browser = new HeadlessChromium(process, profile);
        var endpoint = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        var log = new StringBuilder();
        process.ErrorDataReceived += (_, e) =>
        {
            if (e.Data is null)
            {
                endpoint.TrySetException(new InvalidOperationException($"{path} exited before it listened:\n{log}"));
                return;
            }

            lock (log)
            {
                log.AppendLine(e.Data);
            }

            const string marker = "DevTools listening on ";
            int at = e.Data.IndexOf(marker, StringComparison.Ordinal);
            if (at >= 0)
            {
                endpoint.TrySetResult(e.Data[(at + marker.Length)..].Trim());
            }
        };
        process.OutputDataReceived += (_, _) => { };
        process.BeginErrorReadLine();
        process.BeginOutputReadLine();
        try
        {
            string url = await endpoint.Task.WaitAsync(TimeSpan.FromSeconds(60));
            await browser._socket.ConnectAsync(new Uri(url), CancellationToken.None);
            browser._receive = Task.Run(browser.ReceiveAsync);
            return browser;
        }
        catch
        {
            await browser.DisposeAsync();
            throw;
        }
    }

    /// <summary>Opens <paramref name="url"/> in a new tab, attaches to it, and returns once the page has loaded.</summary>
    public async Task<BrowserPage> OpenAsync(string url)
    {
        JsonNode target = await SendAsync(null, "Target.createTarget", new JsonObject { ["url"] = "about:blank" });
        JsonNode attached = await SendAsync(null, "Target.attachToTarget", new JsonObject { ["targetId"] = target["targetId"]!.GetValue<string>(), ["flatten"] = true });
        string session = attached["sessionId"]!.GetValue<string>();
        await SendAsync(session, "Page.enable", new JsonObject());
        Task loaded = NextEvent(session, "Page.loadEventFired");
        JsonNode navigated = await SendAsync(session, "Page.navigate", new JsonObject { ["url"] = url });
        if (navigated["errorText"] is { } error)
        {
            throw new InvalidOperationException($"the browser could not open {url}: {error}");
        }

        await loaded.WaitAsync(TimeSpan.FromSeconds(60));
        return new BrowserPage(this, session);
    }

    /// <summary>Completes on the next <paramref name="method"/> event of <paramref name="session"/>.</summary>
    private Task NextEvent(string session, string method)
    {
        var fired = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        lock (_lock)
        {
            _events.Add((session, method, fired));
        }

        return fired.Task;
    }

    /// <summary>One DevTools command; its result, or an exception with the protocol's error.</summary>
    internal async Task<JsonNode> SendAsync(string? session, string method, JsonObject parameters)
    {
        var reply = new TaskCompletionSource<JsonNode>(TaskCreationOptions.RunContinuationsAsynchronously);
        int id;
        lock (_lock)
        {
            id = ++_nextId;
            _pending[id] = reply;
        }

        var message = new JsonObject { ["id"] = id, ["method"] = method, ["params"] = parameters };
        if (session is not null)
        {
            message["sessionId"] = session;
        }

        await _send.WaitAsync();
        try
        {
            await _socket.SendAsync(Encoding.UTF8.GetBytes(message.ToJsonString()), WebSocketMessageType.Text, true, CancellationToken.None);
        }
        finally
        {
            _send.Release();
        }

        return await reply.Task.WaitAsync(TimeSpan.FromSeconds(60));
    }

    private async Task ReceiveAsync()
    {
        byte[] buffer = new byte[1 << 16];
        var message = new MemoryStream();
        try
        {
            while (_socket.State == WebSocketState.Open)
            {
                WebSocketReceiveResult part = await _socket.ReceiveAsync(buffer, _stop.Token);
                if (part.MessageType == WebSocketMessageType.Close)
                {
                    break;
                }

                message.Write(buffer, 0, part.Count);
                if (!part.EndOfMessage)
                {
                    continue;
                }

                JsonNode node = JsonNode.Parse(message.ToArray())!;
                message.SetLength(0);
                if (node["id"] is not { } idNode)
                {
                    string? method = node["method"]?.GetValue<string>();
                    string? session = node["sessionId"]?.GetValue<string>();
                    lock (_lock)
                    {
                        foreach ((string Session, string Method, TaskCompletionSource Fired) waiter in _events.Where(w => w.Method == method && w.Session == session).ToArray())
                        {
                            _events.Remove(waiter);
                            waiter.Fired.TrySetResult();
                        }
                    }

                    continue;
                }

                TaskCompletionSource<JsonNode>? reply;
                lock (_lock)
                {
                    _pending.Remove(idNode.GetValue<int>(), out reply);
                }

                if (node["error"] is { } error)
                {
                    reply?.TrySetException(new InvalidOperationException($"DevTools error: {error.ToJsonString()}"));
                }
                else
                {
                    reply?.TrySetResult(node["result"] ?? new JsonObject());
                }
            }
        }
        catch (Exception e) when (e is WebSocketException or OperationCanceledException)
        {
            // the browser closed
        }

        lock (_lock)
        {
            foreach (TaskCompletionSource<JsonNode> reply in _pending.Values)
            {
                reply.TrySetException(new InvalidOperationException("the browser closed its DevTools connection"));
            }

            _pending.Clear();
        }
    }

    public async ValueTask DisposeAsync()
    {
        try
        {
            if (_socket.State == WebSocketState.Open)
            {
                await SendAsync(null, "Browser.close", new JsonObject()).WaitAsync(TimeSpan.FromSeconds(5));
            }
        }
        catch (Exception e) when (e is InvalidOperationException or TimeoutException or WebSocketException)
        {
            // killed below
        }

        await _stop.CancelAsync();
        await _receive;
        if (!_process.HasExited)
        {
            _process.Kill(entireProcessTree: true);
        }

        await _process.WaitForExitAsync();
        _process.Dispose();
        _socket.Dispose();
        _stop.Dispose();
        _send.Dispose();
        try
        {
            _profile.Delete(recursive: true);
        }
        catch (IOException)
        {
            // a crash reporter may still hold a file; the folder is in /tmp
        }
    }
}

/// <summary>One tab, attached: evaluate script, take a screenshot.</summary>
public sealed class BrowserPage(HeadlessChromium browser, string session)
{
    /// <summary>Evaluates <paramref name="expression"/> in the page (awaiting it when it is a promise) and returns its JSON value.</summary>
    public async Task<JsonNode?> EvaluateAsync(string expression)
    {
        JsonNode result = await browser.SendAsync(session, "Runtime.evaluate",
            new JsonObject { ["expression"] = expression, ["awaitPromise"] = true, ["returnByValue"] = true });
        if (result["exceptionDetails"] is { } failure)
        {
            string text = failure["exception"]?["description"]?.GetValue<string>() ?? failure.ToJsonString();
            throw new InvalidOperationException($"the page threw: {text}");
        }

        return result["result"]?["value"];
    }

    /// <summary>A PNG of the page as the browser renders it.</summary>
    public async Task<byte[]> ScreenshotAsync()
    {
        JsonNode result = await browser.SendAsync(session, "Page.captureScreenshot", new JsonObject { ["format"] = "png", ["captureBeyondViewport"] = true });
        return Convert.FromBase64String(result["data"]!.GetValue<string>());
    }
}

/// <summary>
/// A test that needs the browser: skipped, saying why, when no browser is found on a developer's
/// machine; run (and failed with <see cref="HeadlessChromium.Missing"/>) when one is required (CI).
/// </summary>
public sealed class BrowserFactAttribute : FactAttribute
{
    public BrowserFactAttribute()
    {
        if (HeadlessChromium.Find() is null && !HeadlessChromium.Required)
        {
            Skip = HeadlessChromium.Missing + " (CI=true makes this a failure)";
        }
    }
}
