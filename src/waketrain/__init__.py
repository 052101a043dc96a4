"""waketrain: self-hosted wake word training service."""

import warnings

__version__ = "0.1.0"

# asyncssh still names DSA keys in its type hints, and cryptography warns on that import at
# every start of the CLI and the service; nothing here uses DSA.
warnings.filterwarnings("ignore", message="DSA is deprecated", module="asyncssh")
