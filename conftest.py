"""Notebooks under nbval run in quick mode (tiny data, few steps), the mode their stored outputs came from.

Set here, before any kernel starts, so the plain `python -m pytest` of the README does the right thing.
"""

import os

os.environ["REPAIR_QUICK"] = "1"
