"""keycourier's benchmarks: `bench/run` (see README "Benchmarks")."""
