import ArgumentParser
import Logging

/// The `nudge` command: a real-time next-best-action engine on Kafka.
@main
struct Nudge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Real-time next-best-action engine: Kafka events in, recommendations out.",
        subcommands: [Run.self, Demo.self, Generate.self, Broker.self, Bench.self, Dataset.self, Train.self, Evaluate.self, Inspect.self],
        defaultSubcommand: nil)
}

/// Logging options shared by every subcommand.
struct LogOptions: ParsableArguments {
    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    func makeLogger(_ label: String = "nudge") -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
