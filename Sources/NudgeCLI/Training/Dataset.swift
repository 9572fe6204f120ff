import ArgumentParser
import Foundation
import NudgeTraining

extension Nudge {
    /// `nudge dataset`: a point-in-time training dataset from an event history.
    struct Dataset: AsyncParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Build a point-in-time training dataset from event history.",
            discussion: """
            Replays a JSONL history (one Segment event per line, as `nudge generate --out` writes) through the \
            service's own decoder, duplicate filter and feature store, in file order (arrival order). At every \
            cutoff T it writes one row per known customer active in the window before T: the features as of T \
            and churn = 1 when the customer completes no order in (T, T + horizon]. Each delivered offer after \
            the warm-up gets a row in --offers-out: the features when it was delivered and accepted = 1 when \
            Offer Accepted follows within the accept window. Snapshots are taken when the event-time watermark \
            passes T; an event arriving after that with a time before T is missed, as it would be live. Beside \
            each CSV, <csv>.definitions.json records what each feature column computed, for the trainers.

            Example:
              nudge dataset --input history.jsonl --out dataset.csv --offers-out offers.csv
            """)

        @Option(help: "JSONL history to replay.") var input: String
        @Option(help: "Churn dataset CSV to write.") var out: String
        @Option(help: "Offers dataset CSV to write (one row per delivered offer).") var offersOut: String?
        @Option(help: "Time between cutoffs, e.g. 7d, 12h.") var cutoffEvery = "7d"
        @Option(help: "Churn horizon after each cutoff.") var horizon = "30d"
        @Option(help: "History before the first cutoff (from the UTC midnight before the first event).") var warmup = "30d"
        @Option(help: "First cutoff (ISO date or time); overrides --warmup.") var firstCutoff: String?
        @Option(help: "Customers get a row at T when active within this long before T.") var activeWindow = "30d"
        @Option(help: "An offer is accepted when Offer Accepted comes within this long after delivery.") var acceptWindow = "7d"
        @Option(help: "The service's --idle-customer-ttl: an identity link unused this long no longer stitches, here as there.")
        var idleCustomerTtl = "30d"
        @Option(help: "Models directory, where features.json is looked for.") var models = "models"
        @OptionGroup var featureFile: FeatureFileOption

        func run() async throws {
            var config = DatasetConfig()
            config.features = try featureFile.load(modelsDirectory: models)
            config.cutoffEveryMillis = try duration(cutoffEvery, "cutoff-every")
            config.horizonMillis = try duration(horizon, "horizon")
            config.warmupMillis = try duration(warmup, "warmup")
            config.activeWindowMillis = try duration(activeWindow, "active-window")
            config.acceptWindowMillis = try duration(acceptWindow, "accept-window")
            config.identityLinkTTLMillis = try duration(idleCustomerTtl, "idle-customer-ttl")
            if let firstCutoff {
                guard let millis = DurationText.parseInstant(firstCutoff) else {
                    throw ValidationError(TrainingError.option(name: "first-cutoff", value: firstCutoff,
                                                               expected: "a date such as 2026-10-21 or an ISO-8601 time").description)
                }
                config.firstCutoffMillis = millis
            }
            let started = ContinuousClock.now
            let builder = PointInTimeDatasetBuilder(config: config)
            var bar = ProgressBar(total: 100, label: "dataset")
            do {
                try JSONLines.forEachLine(path: input, progress: { done, total in
                    bar.update(total == 0 ? 100 : Int(Double(done) / Double(total) * 100))
                }) { line in builder.consume(line) }
            } catch {
                throw CommandFailure(error.description)
            }
            bar.finish(100)
            let dataset = builder.finish()
            // Beside each CSV, what its feature columns computed: trainers record it in the model.
            let definitions = DatasetDefinitions(features: config.features,
                                                 featureFile: featureFile.source(modelsDirectory: models))
            do {
                try DatasetCSV.write(DatasetCSV.churnCSV(dataset.churnRows, featureNames: dataset.featureNames), to: out)
                try definitions.write(beside: out)
                if let offersOut {
                    try DatasetCSV.write(DatasetCSV.offersCSV(dataset.offerRows, featureNames: dataset.featureNames), to: offersOut)
                    try definitions.write(beside: offersOut)
                }
            } catch {
                throw CommandFailure(error.description)
            }
            print(summary(dataset, seconds: seconds(ContinuousClock.now - started)))
        }

        private func duration(_ text: String, _ name: String) throws -> Int64 {
            guard let millis = DurationText.parseMillis(text) else {
                throw ValidationError(TrainingError.option(name: name, value: text, expected: "a duration such as 7d, 12h, 90m").description)
            }
            return millis
        }

        private func summary(_ dataset: PointInTimeDataset, seconds: Double) -> String {
            let s = dataset.statistics
            let churned = dataset.churnRows.filter(\.churned).count
            let accepted = dataset.offerRows.filter(\.accepted).count
            let cutoffs = Set(dataset.churnRows.map(\.cutoffMillis)).sorted()
            var lines = [
                String(format: "replayed %d messages in %.1f s: %d applied, %d malformed (skipped), %d duplicates (dropped), %d out of order, %d late after a snapshot (missed, as live)",
                       s.messages, seconds, s.applied, s.malformed, s.duplicates, s.outOfOrder, s.missedBySnapshot),
                "history \(s.firstEventMillis.map(DurationText.format(millis:)) ?? "-") … \(s.lastEventMillis.map(DurationText.format(millis:)) ?? "-"); \(s.knownCustomers) known customers, \(s.keys) store keys",
                "\(out): \(dataset.churnRows.count) rows at \(cutoffs.count) cutoffs (\(cutoffs.first.map(DurationText.format(millis:)) ?? "-") … \(cutoffs.last.map(DurationText.format(millis:)) ?? "-")), churn rate \(rate(churned, dataset.churnRows.count)); \(s.censoredCutoffs) later cutoffs dropped (horizon past the end of the history)",
            ]
            if s.skippedCutoffs > 0 { lines.append("\(s.skippedCutoffs) cutoffs skipped without a snapshot (an event jumped far ahead in time)") }
            if let offersOut {
                lines.append("\(offersOut): \(dataset.offerRows.count) offers, acceptance \(rate(accepted, dataset.offerRows.count)); \(s.offersSkipped) skipped (warm-up or no recommendation_id), \(s.censoredOffers) dropped (accept window past the end)")
            }
            return lines.joined(separator: "\n")
        }

        private func rate(_ part: Int, _ whole: Int) -> String {
            whole == 0 ? "-" : String(format: "%.1f%%", 100 * Double(part) / Double(whole))
        }
    }
}
