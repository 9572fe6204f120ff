import ArgumentParser
import Foundation
import NudgeFeatures
import NudgeTraining

/// `--feature-file`: the declarative feature definitions that the service, `nudge dataset` and `nudge train`
/// share, so that a model is trained on exactly the features it is served.
struct FeatureFileOption: ParsableArguments {
    @Option(help: """
        Feature definitions (JSON, see "Features" in README.md). Default: features.json in the models directory, \
        or the built-in standard set when that file does not exist.
        """)
    var featureFile: String?

    /// The file the definitions come from, or nil for the built-in standard set.
    func path(modelsDirectory: String) -> String? {
        let path = featureFile ?? (modelsDirectory as NSString).appendingPathComponent("features.json")
        return featureFile == nil && !FileManager.default.fileExists(atPath: path) ? nil : path
    }

    /// The file the definitions come from, or words for the built-in set: for messages and records.
    func source(modelsDirectory: String) -> String {
        path(modelsDirectory: modelsDirectory) ?? DatasetDefinitions.builtInSet
    }

    /// Loads the definitions, saying on stderr which (a model refused for a feature the set lacks is easier
    /// to place); a bad file is refused with its line and reason.
    func load(modelsDirectory: String) throws -> FeatureSet {
        guard let path = path(modelsDirectory: modelsDirectory) else {
            let missing = (modelsDirectory as NSString).appendingPathComponent("features.json")
            Self.say("features: the built-in standard set (\(FeatureSet.standard.count)), as there is no \(missing); "
                     + "pass --feature-file to use a file")
            return .standard
        }
        do {
            let features = try FeatureSet.load(file: path)
            Self.say("features: \(features.count) from \(path)")
            return features
        } catch {
            throw CommandFailure("feature file refused: \(error)")
        }
    }

    private static func say(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}
