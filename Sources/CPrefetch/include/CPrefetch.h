// Cache prefetch hints for the shard's hot path. Swift has no prefetch intrinsic; these static inline
// functions compile to one PREFETCH instruction (x86) or PRFM (arm64) when inlined into Swift code.
#ifndef NUDGE_CPREFETCH_H
#define NUDGE_CPREFETCH_H

/// Asks the CPU to bring the cache line holding `address` closer, for a read soon. Never faults, even
/// for an address that is not mapped.
static inline void nudge_prefetch_read(const void *address) { __builtin_prefetch(address, 0, 3); }

/// As nudge_prefetch_read, for a line about to be written.
static inline void nudge_prefetch_write(const void *address) { __builtin_prefetch(address, 1, 3); }

#endif
