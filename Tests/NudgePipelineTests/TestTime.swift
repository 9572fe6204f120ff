// Event-time constants the processor-level tests share (Unix milliseconds).

let minute: Int64 = 60_000
let hour = 60 * minute
let day = 24 * hour
/// 2026-11-20T10:00:00Z: a round time, so deadlines read well in failures.
let t0: Int64 = 1_795_168_800_000
