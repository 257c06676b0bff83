"""The paper's demonstrations, calibrations, analysis and plots."""
