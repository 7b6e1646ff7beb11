"""Old-photo repair: aging, training, restoration and StyleGAN inversion behind one small package.

Notebooks, `data_prep/` scripts and `python -m helpers` all call into this package; the logic lives here.
"""

__version__ = "0.1.0"


class HelpersError(Exception):
    """An error caused by the user's input (bad file, bad option); shown as one line, no traceback."""


class UsageError(HelpersError):
    """A bad command line or option value: exit status 2."""
