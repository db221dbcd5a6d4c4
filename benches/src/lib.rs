//! Benchmarks for psi; see `benches/`.
