import ArgumentParser

/// `hms-act`: the one executable. Subcommands are added as their parts land.
@main
struct HMSAct: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "hms-act",
        abstract: "Workflow orchestrator for citizen-service playbooks.",
        subcommands: [
            ServeCommand.self, MigrateCommand.self, PlaybookCommand.self, SimulateCommand.self, EmitCommand.self,
            RunsCommand.self, WatchCommand.self,
            PauseCommand.self, ResumeCommand.self, CancelCommand.self, SignalCommand.self, ApproveCommand.self,
            IncidentsCommand.self, RewindCommand.self, SchedulesCommand.self, BulkCommand.self, DeadCommand.self, RetentionCommand.self, TasksCommand.self, AuditCommand.self, WorkerCommand.self, TokenCommand.self, CompletionCommand.self,
        ]
    )
}
