/// Why a message is dead-lettered. `rawValue` is the machine code put in the `x-error` header.
public enum DeadLetterCode: String, Sendable, CaseIterable {
    /// Not strict JSON (RFC 8259): syntax error, top level not an object, trailing bytes, bad escape,
    /// control character or invalid UTF-8 inside a string.
    case invalidJSON = "invalid_json"
    /// Neither `userId` nor `anonymousId` is a non-empty string.
    case missingId = "missing_id"
    /// `messageId` absent, null or empty (the service needs it to drop duplicates).
    case missingMessageId = "missing_message_id"
    /// `timestamp` absent, null or not ISO-8601 with a valid date and time.
    case badTimestamp = "bad_timestamp"
    /// A field Nudge reads has the wrong JSON type (or a value outside its range, such as an id over
    /// `SegmentDecoder.maxIdBytes`).
    case wrongType = "wrong_type"
    /// `type` absent or not `track`, `page`, `screen` or `identify`.
    case unknownType = "unknown_type"
    /// A `track` message without a non-empty `event` name.
    case missingEvent = "missing_event"
    /// Bigger than the decoder's size limit (checked before parsing).
    case tooLarge = "too_large"
    /// Nested deeper than `SegmentDecoder.maxNestingDepth`.
    case tooDeep = "too_deep"
    /// A valid event older than its shard's event-time watermark (later than the allowed lateness), under
    /// the dead-letter late-event policy. Not a decoding failure: the pipeline assigns it.
    case late = "late"
    /// A valid event stamped further ahead of the instance's wall clock than its allowed clock skew, under
    /// the dead-letter policy. Not a decoding failure: the pipeline assigns it.
    case future = "future"
}

/// A decode failure: the dead-letter code and a short human detail naming the field (for `x-error-detail`).
public struct DecodeError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The machine code.
    public var code: DeadLetterCode
    /// What was wrong and where, e.g. `properties.price must be a number`.
    public var detail: String

    /// Creates an error; the detail should name the field.
    public init(_ code: DeadLetterCode, _ detail: String) {
        self.code = code
        self.detail = detail
    }

    /// `code: detail`, as logged.
    public var description: String { "\(code.rawValue): \(detail)" }
}
