using System.CommandLine.Parsing;
using System.Globalization;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Cli;

/// <summary>
/// Options of the kinds the CLI repeats: sizes and durations through the shared parsers of Contracts
/// (<see cref="ByteSize"/>, <see cref="Duration"/>, the ones the silo uses), and bounded whole numbers.
/// A bad value is a parse error naming the option as typed (<c>--arena-size</c>, or <c>-size</c> if that
/// alias was used), so it exits 2 like any usage error.
/// </summary>
public static class Symbols
{
    /// <summary>The value of an option made here, or its fallback when it was not given (see <see cref="Get"/>).</summary>
    private static readonly System.Runtime.CompilerServices.ConditionalWeakTable<Symbol, object> Fallbacks = [];

    /// <summary>
    /// The option's value, or the fallback it was made with when the command line does not name it. (The options
    /// here keep their default out of System.CommandLine, whose help would print 1073741824 for 1GiB and 00:00:10
    /// for 10s; the description says "default 1GiB" instead.)
    /// </summary>
    public static T Get<T>(this ParseResult r, Option<T> o) =>
        r.GetResult(o) is null && Fallbacks.TryGetValue(o, out object? f) ? (T)f : r.GetValue(o)!;

    public static Option<long> Size(string name, string description, long fallback, params string[] aliases) =>
        Make(name, aliases, description, "SIZE", fallback, fallback == 0 ? null : ByteSize.Format(fallback).Replace(" ", "", StringComparison.Ordinal),
            (string t, out long v) => ByteSize.TryParse(t, out v), ByteSize.Error);

    public static Option<TimeSpan> Duration(string name, string description, TimeSpan fallback, params string[] aliases) =>
        Make(name, aliases, description, "DURATION", fallback,
            fallback.TotalSeconds >= 1 && fallback.TotalSeconds % 1 == 0 ? $"{fallback.TotalSeconds:0}s" : $"{fallback.TotalMilliseconds:0}ms",
            (string t, out TimeSpan v) => Contracts.Duration.TryParse(t, out v) && v > TimeSpan.Zero,
            (o, t) => Contracts.Duration.Error(o, t) + ", above zero");

    /// <remarks>A <paramref name="fallback"/> below <paramref name="min"/> means "the command decides" (the description says how).</remarks>
    public static Option<long> Count(string name, string description, long fallback, long min, long max, params string[] aliases) =>
        Make(name, aliases, description, "N", fallback, fallback < min ? null : fallback.ToString(CultureInfo.InvariantCulture),
            (string t, out long v) => long.TryParse(t.Replace("_", "", StringComparison.Ordinal), NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out v) && v >= min && v <= max,
            (o, t) => $"{o}: '{t}' is not a whole number from {min} to {max}");

    private static Option<T> Make<T>(string name, string[] aliases, string description, string helpName, T fallback, string? shown, TryParser<T> parse, Func<string, string, string> error)
    {
        var o = new Option<T>(name, aliases)
        {
            Description = shown is null ? description : $"{description} (default {shown})",
            HelpName = helpName,
            CustomParser = r => Parse(r, fallback, parse, error),
        };
        Fallbacks.AddOrUpdate(o, fallback!);
        return o;
    }

    /// <summary>The option as the user typed it (its alias), for error messages.</summary>
    public static string Typed(ArgumentResult r) =>
        r.Parent is OptionResult o ? o.IdentifierToken?.Value ?? o.Option.Name : r.Argument.Name;

    private delegate bool TryParser<T>(string text, out T value);

    private static T Parse<T>(ArgumentResult r, T fallback, TryParser<T> parse, Func<string, string, string> error)
    {
        if (r.Tokens.Count == 0)
        {
            return fallback;
        }

        string text = r.Tokens[0].Value;
        if (parse(text, out T value))
        {
            return value;
        }

        r.AddError(error(Typed(r), text));
        return fallback;
    }
}
