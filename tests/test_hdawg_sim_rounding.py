"""The simulated HDAWG's sample-count -> ns rounding (ties to even, like ``round``)."""

from hypothesis import given, strategies as st

from qnodeos_hw.simulators.hdawg_sim import round_half_even


def test_round_half_even_is_the_builtin_round():
    @given(st.floats(min_value=-1e12, max_value=1e12, allow_nan=False))
    def same(x):
        assert round_half_even(x) == round(x)

    same()
    for x in (0.5, 1.5, 2.5, -0.5, -1.5, 6 / 2.4, 7 / 2.4 * 2.4, 1e9 + 0.5):
        assert round_half_even(x) == round(x), x
