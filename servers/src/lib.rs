//! atomic-breaker in servers (unpublished): the axum and tonic mappings of a breaker rejection,
//! shared by the demo, the round-trip tests and the benchmark.
