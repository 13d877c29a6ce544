"""File permissions shared by every writer of results (tables, manifests, figures).

Results are written to a temporary file and renamed onto their name; ``tempfile.mkstemp``
creates that file with mode 0600, so each writer gives it the mode a plain ``open`` would:
0666 less the user's umask (read once, at import).
"""

from __future__ import annotations

import os


def _umask() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


UMASK = _umask()
FILE_MODE = 0o666 & ~UMASK
