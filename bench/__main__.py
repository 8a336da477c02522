"""`python -m bench` from the repository root (the remixd measured is the one beside bench/)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.run import main

raise SystemExit(main())
