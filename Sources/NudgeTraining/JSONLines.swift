#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation

/// Splits a JSON Lines history (one message per line, as `nudge generate --out` writes) into messages,
/// without copying them: each line is handed over as a span of the file's bytes.
public enum JSONLines {
    /// Calls `body` with every non-blank line of the file at `path` (the trailing `\r` of a CRLF line
    /// removed), in file order, then returns how many blank lines were skipped. The file is memory-mapped,
    /// so a history larger than memory is fine. `progress` receives the bytes consumed so far, every few MiB
    /// and once at the end.
    @discardableResult
    public static func forEachLine(path: String, progress: (_ bytesDone: Int, _ bytesTotal: Int) -> Void = { _, _ in },
                                   _ body: (UnsafeRawBufferPointer) -> Void) throws(TrainingError) -> Int {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw .file(path: path, problem: "cannot read the history (\(error.localizedDescription)); check the path")
        }
        return data.withUnsafeBytes { bytes in forEachLine(in: bytes, progress: progress, body) }
    }

    /// `forEachLine(path:)` on bytes already in memory; returns the number of blank lines skipped.
    @discardableResult
    public static func forEachLine(in bytes: UnsafeRawBufferPointer,
                                   progress: (_ bytesDone: Int, _ bytesTotal: Int) -> Void = { _, _ in },
                                   _ body: (UnsafeRawBufferPointer) -> Void) -> Int {
        guard let base = bytes.baseAddress, !bytes.isEmpty else {
            progress(0, 0)
            return 0
        }
        let total = bytes.count
        let reportEvery = 4 << 20
        var nextReport = reportEvery
        var start = 0
        var blank = 0
        while start < total {
            let remaining = total - start
            let end: Int
            if let newline = memchr(base + start, 0x0A, remaining) {
                end = base.distance(to: UnsafeRawPointer(newline))
            } else {
                end = total
            }
            var stop = end
            if stop > start, base.load(fromByteOffset: stop - 1, as: UInt8.self) == 0x0D { stop -= 1 }
            if isBlank(base + start, stop - start) {
                blank += 1
            } else {
                body(UnsafeRawBufferPointer(start: base + start, count: stop - start))
            }
            start = end + 1
            if start >= nextReport {
                progress(min(start, total), total)
                nextReport = start + reportEvery
            }
        }
        progress(total, total)
        return blank
    }

    private static func isBlank(_ p: UnsafeRawPointer, _ count: Int) -> Bool {
        for i in 0..<count {
            switch p.load(fromByteOffset: i, as: UInt8.self) {
            case 0x20, 0x09: continue
            default: return false
            }
        }
        return true
    }
}
