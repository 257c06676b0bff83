"""QDrivers: NetQASM quantum instructions -> physical instructions -> platform codes."""
