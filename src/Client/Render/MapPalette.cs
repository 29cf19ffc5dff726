using ClusterHeap.Heap;

namespace ClusterHeap.Client.Render;

/// <summary>
/// Colours of the heap map, shared by the terminal and the SVG picture: the hue says the size class
/// (small classes blue, through green and yellow, to red for 32 KiB; large spans magenta), the
/// lightness says how full the span is (pale = nearly empty, deep = full).
/// </summary>
public static class MapPalette
{
    public readonly record struct Rgb(byte R, byte G, byte B)
    {
        public string Hex => $"#{R:x2}{G:x2}{B:x2}";
    }

    public static readonly Rgb Free = new(0xd9, 0xd9, 0xd9);
    public static readonly Rgb Released = new(0x5a, 0x5a, 0x5a);
    /// <summary>The outline (SVG, web) of a span the last collection left to sweep.</summary>
    public static readonly Rgb Unswept = new(0xff, 0x8c, 0x00);

    public static double Hue(int sizeClass) =>
        sizeClass == 0 ? 300 : 230.0 - 230.0 * (sizeClass - 1) / (SizeClasses.NumClasses - 2);

    /// <summary>The span colour for <paramref name="sizeClass"/> at <paramref name="occupancy"/> (0..1).</summary>
    public static Rgb Span(int sizeClass, double occupancy) =>
        FromHsl(Hue(sizeClass), 0.75, 0.82 - 0.47 * Math.Clamp(occupancy, 0, 1));

    /// <summary>The class colour at full occupancy (legend swatches).</summary>
    public static Rgb Class(int sizeClass) => Span(sizeClass, 0.8);

    public static string Describe(int sizeClass) =>
        sizeClass == 0 ? "large" : $"{SizeClasses.SizeOf(sizeClass)} B";

    private static Rgb FromHsl(double h, double s, double l)
    {
        double c = (1 - Math.Abs(2 * l - 1)) * s;
        double hp = h / 60;
        double x = c * (1 - Math.Abs(hp % 2 - 1));
        (double r, double g, double b) = hp switch
        {
            < 1 => (c, x, 0.0),
            < 2 => (x, c, 0.0),
            < 3 => (0.0, c, x),
            < 4 => (0.0, x, c),
            < 5 => (x, 0.0, c),
            _ => (c, 0.0, x),
        };
        double m = l - c / 2;
        return new Rgb(To(r + m), To(g + m), To(b + m));
    }

    private static byte To(double v) => (byte)Math.Round(Math.Clamp(v, 0, 1) * 255);
}
