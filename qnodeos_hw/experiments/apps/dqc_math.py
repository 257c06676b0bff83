"""The DQC client's classical computation (no netqasm imports: testable on its own)."""


def delta_of(alpha: int, theta: int, m: int) -> int:
    """delta in units of pi/4 (0..7) from alpha, theta (units of pi/4) and the client's
    outcome m: delta = alpha + theta - m*pi (mod 2pi), for a pair corrected to Phi+."""
    return (alpha + theta - 4 * m) % 8
