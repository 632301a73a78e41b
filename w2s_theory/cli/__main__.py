"""``python -m w2s_theory.cli COMMAND`` (e.g. under ``accelerate launch -m``)."""

import sys

from . import main

sys.exit(main())
