"""A real AT Protocol network on loopback for tests, benchmarks and the demo: a PLC
directory, PDS hosts and a Jetstream v1 server, speaking the real wire formats."""
