import NudgeEvents

/// A feature set compiled to byte offsets inside a customer record, plus the record's initial bytes.
///
/// Eight-byte state (ring heads, lifetime values, times) comes first, Float32 rings after, so every field
/// is naturally aligned and the stride is a multiple of 8.
struct FeatureLayout: Sendable {
    /// One kernel per definition, in definition order.
    let kernels: [FeatureKernel]
    /// Bytes per customer record.
    let stride: Int
    /// A fresh customer's record: sentinels for "never seen".
    let template: [UInt8]

    init(_ definitions: [FeatureDefinition]) {
        var wordOffset = CustomerRecord.headerSize
        let wordBytes = definitions.reduce(0) { $0 + FeatureKernel.stateBytes(for: $1) }
        var ringOffset = CustomerRecord.headerSize + wordBytes
        var kernels: [FeatureKernel] = []
        kernels.reserveCapacity(definitions.count)
        for definition in definitions {
            let kernel = FeatureKernel(definition, stateOffset: wordOffset, ringOffset: ringOffset)
            wordOffset += FeatureKernel.stateBytes(for: definition)
            ringOffset += kernel.ringBytes
            kernels.append(kernel)
        }
        self.kernels = kernels
        stride = (ringOffset + 7) & ~7
        var template = [UInt8](repeating: 0, count: stride)
        template.withUnsafeMutableBytes { bytes in
            guard let record = bytes.baseAddress else { return }
            record.storeBytes(of: Int64.min, toByteOffset: CustomerRecord.newestMillis, as: Int64.self)
            for kernel in kernels { kernel.initialize(record) }
        }
        self.template = template
    }
}
