"""Input and output: case files (TOML, ``case``), result files (HDF5,
``hdf5``) and layer checkpoints (``checkpoint``). The submodules load on first
use (PEP 562): reading a result file (``mzpdf info``) does not import the
solvers that reading a case needs."""
from .._lazy import lazy_exports

_EXPORTS = {
    "case": ("Case", "apply_overrides", "load_case", "loads_case", "parse_override"),
    "hdf5": ("SCHEMA_VERSION", "describe", "read_results", "write_results"),
}
__getattr__, __dir__, __all__ = lazy_exports(__name__, globals(), _EXPORTS)
