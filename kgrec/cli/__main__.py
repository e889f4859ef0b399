"""``python -m kgrec.cli``: the ``kgrec`` command (what ``kgrec train --nproc N`` runs under torchrun)."""

import sys

from kgrec.cli import main

sys.exit(main())
