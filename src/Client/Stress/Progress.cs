using System.Globalization;

namespace ClusterHeap.Client.Stress;

/// <summary>
/// Shows a stress run moving: a bar redrawn in place on a terminal, or a plain line every two seconds
/// when the output is a file or a pipe (CI logs stay readable).
/// </summary>
public sealed class Progress(StressContext ctx, TextWriter output, bool terminal)
{
    public async Task RunAsync(CancellationToken stop)
    {
        TimeSpan every = terminal ? TimeSpan.FromMilliseconds(200) : TimeSpan.FromSeconds(2);
        using var timer = new PeriodicTimer(every);
        try
        {
            while (await timer.WaitForNextTickAsync(stop)) Draw();
        }
        catch (OperationCanceledException)
        {
            // The run is over.
        }
        if (terminal)
        {
            Draw();
            output.WriteLine();
        }
    }

    private void Draw()
    {
        double s = ctx.Clock.Elapsed.TotalSeconds;
        long ops = ctx.TimedOps;
        string rate = (s <= 0 ? 0 : ops / s).ToString("0", CultureInfo.InvariantCulture);
        string tail = $"{s.ToString("0.0", CultureInfo.InvariantCulture)}s ops {ops} ({rate}/s) cookie failures {ctx.CookieFailures} lost {ctx.Lost} errors {ctx.Errors}";
        if (!terminal)
        {
            output.WriteLine($"progress {tail}");
            return;
        }
        const int width = 30;
        int filled = (int)Math.Round(ctx.Fraction * width);
        output.Write($"\r[{new string('#', filled)}{new string('.', width - filled)}] {ctx.Fraction * 100,3:0}% {tail}\u001b[K");
    }
}
