namespace ClusterHeap.Client.Cli;

/// <summary>The command line or a shell command was wrong; the message says what and how to write it.</summary>
public sealed class UsageException(string message) : Exception(message);
