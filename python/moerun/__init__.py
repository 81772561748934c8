"""moerun — read moerun telemetry (HDF5) and run summaries into pandas / xarray.

    import moerun
    with moerun.open("run.h5") as t:
        t.load(); t.phases(); t.traffic(); t.router(); t.events()
        t.dataarray("steps/phase_time")      # xarray, named dimensions, units
    moerun.summaries("sweep/")               # one row per run

Depends on h5py, numpy and pandas (Debian: python3-h5py, python3-numpy, python3-pandas);
xarray is optional (python3-xarray). Documentation: docs/python.md.
"""
from .summary import is_summary, read_summary, summaries
from .telemetry import DEFAULT_DIMS, Telemetry, open

__version__ = "0.1.0"
__all__ = ["open", "Telemetry", "summaries", "read_summary", "is_summary", "DEFAULT_DIMS"]
