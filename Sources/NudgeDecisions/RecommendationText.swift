import NudgeModels

/// The parts of a recommendation's JSON that depend only on the models, written once per model load:
/// each action's quoted id, each reason's opening (`{"feature":"…","contribution":`) and the models
/// object. ``RecommendationWriter`` copies them in rather than escaping the same names again on every
/// decision (a sixth of the writer's time went to escaping them).
///
/// Immutable after init; the bytes live as long as the ``Decider`` that holds it.
final class RecommendationText: @unchecked Sendable {
    private let bytes: UnsafeMutableRawPointer
    /// Where each fragment starts in `bytes`; fragment `i` ends where `i + 1` starts. Actions first, then
    /// each action's reasons in its scorer's feature order, then the models object.
    private let starts: [Int]
    /// The index in `starts` of each action's first reason.
    private let reasonBase: [Int]
    /// The index in `starts` of the models object.
    private let modelsFragment: Int

    /// The text for `nba`'s actions and reasons and both models' identities.
    init(nba: NBAModel, churn: ChurnModel) {
        let out = JSONBytes(capacity: 4096)
        var starts: [Int] = []
        for action in nba.actions {
            starts.append(out.count)
            out.string(action.id)
        }
        var reasonBase: [Int] = []
        for action in nba.actions {
            reasonBase.append(starts.count)
            for name in action.scorer.featureNames {
                starts.append(out.count)
                out.raw("{\"feature\":")
                out.string(name)
                out.raw(",\"contribution\":")
            }
        }
        modelsFragment = starts.count
        starts.append(out.count)
        out.raw("{\"nba\":")
        Self.identity(nba.identity, out)
        out.raw(",\"churn\":")
        Self.identity(churn.identity, out)
        out.byte(UInt8(ascii: "}"))
        starts.append(out.count)
        bytes = .allocate(byteCount: max(out.count, 1), alignment: 8)
        bytes.copyMemory(from: out.base, byteCount: out.count)
        self.starts = starts
        self.reasonBase = reasonBase
    }

    deinit { bytes.deallocate() }

    /// Action `index`'s id as a JSON string (quoted and escaped).
    @inline(__always)
    func action(_ index: Int) -> UnsafeRawBufferPointer { fragment(index) }

    /// `{"feature":"<name>","contribution":` for feature `feature` of action `action`'s scorer.
    @inline(__always)
    func reason(action: Int, feature: Int) -> UnsafeRawBufferPointer { fragment(reasonBase[action] + feature) }

    /// `{"nba":"name@version","churn":"name@version"}`.
    var models: UnsafeRawBufferPointer { fragment(modelsFragment) }

    @inline(__always)
    private func fragment(_ i: Int) -> UnsafeRawBufferPointer {
        UnsafeRawBufferPointer(start: bytes + starts[i], count: starts[i + 1] - starts[i])
    }

    /// `"name@version"`, escaped.
    private static func identity(_ identity: ModelIdentity, _ out: JSONBytes) {
        out.byte(UInt8(ascii: "\""))
        out.stringContent(identity.name)
        out.byte(UInt8(ascii: "@"))
        out.stringContent(identity.version)
        out.byte(UInt8(ascii: "\""))
    }
}
