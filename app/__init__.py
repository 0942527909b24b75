"""The faces: the command line, the dashboard, the coding-agent launchers, the demo, the
stand-in provider and the benchmarks."""
