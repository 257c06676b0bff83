"""Simulated backends that implement the vendors' own API surfaces, and the qubit
physics behind them."""
