import ArgumentParser

/// `hms-act completion bash|zsh|fish`: prints the shell completion script.
struct CompletionCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "completion",
        abstract: "Print the shell completion script for bash, zsh or fish.",
        discussion: """
            bash:  hms-act completion bash > /etc/bash_completion.d/hms-act   (or: source <(hms-act completion bash))
            zsh:   hms-act completion zsh > "${fpath[1]}/_hms-act"
            fish:  hms-act completion fish > ~/.config/fish/completions/hms-act.fish
            """
    )

    /// A shell ArgumentParser can write a completion script for.
    enum Shell: String, ExpressibleByArgument, CaseIterable {
        case bash
        case zsh
        case fish

        var completionShell: CompletionShell {
            switch self {
            case .bash: .bash
            case .zsh: .zsh
            case .fish: .fish
            }
        }
    }

    @Argument(help: "The shell: bash, zsh or fish.")
    var shell: Shell

    func run() throws {
        print(HMSAct.completionScript(for: shell.completionShell))
    }
}
