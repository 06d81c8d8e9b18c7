"""KetaWatch domain layer: risk engine, exports and command line, shared by the dashboard and the CLI."""
