"""`python -m cnnlab` (and `torchrun -m cnnlab train ...`)."""

import sys

from cnnlab.cli import main

sys.exit(main())
