"""Input and output: case files (TOML) and result files (HDF5)."""
from .case import Case, apply_overrides, load_case, loads_case, parse_override
from .hdf5 import SCHEMA_VERSION, describe, read_results, write_results

__all__ = ["Case", "load_case", "loads_case", "parse_override", "apply_overrides",
           "SCHEMA_VERSION", "write_results", "read_results", "describe"]
