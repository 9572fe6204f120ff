import Foundation

/// A progress bar on standard error for long work (generate, replay, train, bench). On a terminal
/// it redraws one line; otherwise it prints a line every 10%, so CI logs stay short.
/// Hand-written: a dozen lines, and no library in reach draws one without pulling in a framework.
struct ProgressBar {
    private let total: Int
    private let label: String
    private let started = ContinuousClock.now
    private let isTerminal = isatty(STDERR_FILENO) == 1
    private var lastDrawn = ContinuousClock.now - .seconds(1)
    private var lastDecile = -1

    init(total: Int, label: String) {
        self.total = max(1, total)
        self.label = label
    }

    /// Reports progress; cheap to call often (it draws at most ten times a second).
    mutating func update(_ done: Int) {
        let now = ContinuousClock.now
        if isTerminal {
            guard now - lastDrawn >= .milliseconds(100) || done >= total else { return }
            lastDrawn = now
            let fraction = min(1, Double(done) / Double(total))
            let width = 30
            let filled = Int(fraction * Double(width))
            let elapsed = seconds(now - started)
            let rate = elapsed > 0 ? Double(done) / elapsed : 0
            let eta = rate > 0 ? Double(total - done) / rate : 0
            let bar = String(repeating: "█", count: filled) + String(repeating: "░", count: width - filled)
            FileHandle.standardError.write(Data(String(format: "\r%@ %@ %3.0f%% %d/%d %.0f/s eta %.0fs ", label, bar, fraction * 100, done, total, rate, eta).utf8))
        } else {
            let decile = min(10, done * 10 / total)
            guard decile != lastDecile else { return }
            lastDecile = decile
            FileHandle.standardError.write(Data("\(label): \(decile * 10)% (\(done)/\(total))\n".utf8))
        }
    }

    /// Finishes the line.
    mutating func finish(_ done: Int) {
        update(done)
        if isTerminal { FileHandle.standardError.write(Data("\n".utf8)) }
    }
}

func seconds(_ d: Duration) -> Double {
    Double(d.components.seconds) + Double(d.components.attoseconds) / 1e18
}
