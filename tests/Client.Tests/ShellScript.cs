using System.Text.RegularExpressions;
using ClusterHeap.Client.Commands;
using ClusterHeap.Client.Connect;
using ClusterHeap.Contracts;

namespace ClusterHeap.Client.Tests;

/// <summary>The scripted shell as the shell tests drive it (ShellTests, GcShellTests): lines in, exit code and output back.</summary>
internal static partial class ShellScript
{
    /// <summary>Runs <paramref name="lines"/> through the same entry point as `clusterheap shell` with stdin not a terminal.</summary>
    public static async Task<(int Exit, string Output)> RunAsync(ClusterConnection c, params string[] lines)
    {
        var output = new StringWriter();
        int exit = await ShellCommand.ScriptAsync(c, new StringReader(string.Join('\n', lines)), output);
        return (exit, output.ToString());
    }

    /// <summary>Runs an allocating <paramref name="command"/>, which must succeed and print the pointer first on its line.</summary>
    public static async Task<HeapPointer> AllocAsync(ClusterConnection c, string command)
    {
        (int exit, string output) = await RunAsync(c, command);
        Assert.Equal(0, exit);
        Match m = PointerLine().Match(output);
        Assert.True(m.Success, output);
        Assert.True(HeapPointer.TryParse(m.Groups[1].Value, out HeapPointer p));
        return p;
    }

    [GeneratedRegex(@"^(0x[0-9a-f]{16})  ", RegexOptions.Multiline)]
    private static partial Regex PointerLine();
}
