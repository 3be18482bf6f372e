//! Shared pieces of the benchmark binaries (filled in with the ring bench).
