"""NetQASM SDK programs of the paper's demonstrations (``main(app_config, **inputs)``,
importing from ``netqasm.sdk.external`` like any unmodified application).

Angles are integers in units of pi/4 (the NV waveform table plays multiples of pi/4).
"""
