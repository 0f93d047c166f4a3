"""``python -m mzpdf``: the same as the ``mzpdf`` console script."""
import sys

from .cli import main

sys.exit(main())
