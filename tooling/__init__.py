"""Development tooling: what `make demo`, `make up`, the tests and the benchmarks use to run the
services as real processes. No runtime package imports it (`.importlinter`)."""
