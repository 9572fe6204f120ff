import Foundation

/// What a thread of the benchmark process does, by its OS name (Nudge names its threads; librdkafka
/// names its own `rdk:…`).
enum ThreadRole: String, CaseIterable {
    case shards = "shards (decode, features, decisions)"
    case consumer = "consumer thread (poll, route, offsets)"
    case librdkafka = "librdkafka's threads (fetch, produce)"
    case delivery = "delivery reports"
    case metrics = "metrics thread"
    case rest = "rest of the process"

    init(threadName name: String) {
        if name.hasPrefix("nudge-shard") {
            self = .shards
        } else if name == "nudge-consumer" {
            self = .consumer
        } else if name.hasPrefix("rdk:") {
            self = .librdkafka
        } else if name == "kafka-delivery" {
            self = .delivery
        } else if name == "nudge-metrics" {
            self = .metrics
        } else {
            self = .rest
        }
    }
}

/// CPU seconds (user + system) each live thread of this process has used, from /proc/self/task.
struct ThreadCPUSample {
    /// By thread id: its name and CPU seconds so far.
    var threads: [Int32: (name: String, seconds: Double)] = [:]

    /// Reads every thread's figures now. Threads that end between listing and reading are skipped.
    static func now() -> ThreadCPUSample {
        var sample = ThreadCPUSample()
        guard let tids = try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/task") else { return sample }
        for tid in tids {
            guard let id = Int32(tid), let stat = ProcStat(path: "/proc/self/task/\(tid)/stat") else { continue }
            sample.threads[id] = (stat.name, stat.cpuSeconds)
        }
        return sample
    }

    /// CPU seconds by role spent between `earlier` and this sample (threads started since count from zero;
    /// threads ended since are not counted).
    func spent(since earlier: ThreadCPUSample) -> [ThreadRole: Double] {
        var out: [ThreadRole: Double] = [:]
        for (id, thread) in threads {
            let before = earlier.threads[id].map { $0.name == thread.name ? $0.seconds : 0 } ?? 0
            out[ThreadRole(threadName: thread.name), default: 0] += max(0, thread.seconds - before)
        }
        return out
    }
}

/// A process's or thread's name and CPU time, from its `stat` file in /proc (proc(5)).
struct ProcStat {
    /// The command name (a thread's name for a task).
    let name: String
    /// User + system CPU seconds.
    let cpuSeconds: Double

    /// Nil when the file is gone (the process or thread ended) or not in the expected form.
    init?(path: String) {
        guard let stat = try? String(contentsOfFile: path, encoding: .utf8),
              let open = stat.firstIndex(of: "("), let close = stat.lastIndex(of: ")") else { return nil }
        let fields = stat[stat.index(after: close)...].split(separator: " ")
        // After the name: state is field 3, utime 14, stime 15 (1-based in proc(5)).
        guard fields.count > 12, let utime = Double(fields[11]), let stime = Double(fields[12]) else { return nil }
        name = String(stat[stat.index(after: open)..<close])
        cpuSeconds = (utime + stime) / Double(sysconf(Int32(_SC_CLK_TCK)))
    }
}
