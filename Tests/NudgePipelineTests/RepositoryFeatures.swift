import NudgeFeatures
import Testing

/// The repository's default feature file, `models/features.json`: what the service computes and the
/// starter models are trained on. Loading it here also keeps the shipped file honest.
let repoFeatures: FeatureSet = {
    do {
        return try FeatureSet.load(file: repoModels + "/features.json")
    } catch {
        // A test cannot run without it; fail loudly through the expectations that use it.
        Issue.record("models/features.json refused: \(error)")
        return .standard
    }
}()
