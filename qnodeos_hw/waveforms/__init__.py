"""NV pulse library: pulse shapes, the calibration record, XY8 timing and the waveform table.

Modules: :mod:`.shapes` (envelopes), :mod:`.calibration` (``NVCalibration``,
``load_calibration``, ``CalibrationError``), :mod:`.xy8` (DD timing on the 16-sample
AWG grid), :mod:`.table` (``TableEntry``, ``WaveformTable``, ``build_table``),
:mod:`.build` (the ``qnodeos-hw waveforms build`` command).
"""
