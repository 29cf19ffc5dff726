using ClusterHeap.Client.Cli;

namespace ClusterHeap.Client.Commands;

/// <summary>
/// `clusterheap completion bash`: prints a bash completion script. The script asks clusterheap itself what can
/// come next (System.CommandLine's <c>[suggest:POSITION]</c> directive), so commands, options and fixed values
/// such as workload names complete from the same tree that parses them.
/// </summary>
public static class CompletionCommand
{
    public const string Bash = """
        # bash completion for clusterheap: eval "$(clusterheap completion bash)" (e.g. in ~/.bashrc)
        _clusterheap_complete() {
          local IFS=$'\n'
          # shellcheck disable=SC2207
          COMPREPLY=($(command "${COMP_WORDS[0]}" "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null))
        }
        complete -o default -F _clusterheap_complete clusterheap
        """;

    public static Command Create(CliContext cli)
    {
        Argument<string> shell = new Argument<string>("SHELL") { Description = "the shell (bash)" }.AcceptOnlyFromAmong("bash");
        Command command = CommandTree.New("completion",
            "Print a tab-completion script for the shell. Commands, options and workload names complete.",
            "eval \"$(clusterheap completion bash)\"", "clusterheap completion bash > ~/.local/share/bash-completion/completions/clusterheap")
            .With(shell);
        command.SetAction(r =>
        {
            cli.Output.WriteLine(Bash);
            return ExitCodes.Ok;
        });
        return command;
    }
}
