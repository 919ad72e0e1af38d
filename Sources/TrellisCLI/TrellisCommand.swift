import ArgumentParser

/// The `trellis` command.
@main
struct TrellisCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "trellis",
        abstract: "A cluster node whose membership overlays are Lua scripts.",
        subcommands: [UpCommand.self, SimCommand.self, NodeCommand.self, CheckCommand.self, SwapCommand.self, FaultCommand.self]
    )
}
