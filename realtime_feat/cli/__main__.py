"""`python -m realtime_feat.cli ...`, as the `realtime-feat` command."""
import sys

from . import main

sys.exit(main())
