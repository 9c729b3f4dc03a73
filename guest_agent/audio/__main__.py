"""``python -m guest_agent.audio``: the same as ``kvmfr-agent audio``."""

import sys

from guest_agent.audio.cli import main

sys.exit(main())
