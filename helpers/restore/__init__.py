"""Restore real files: load a restorer, run it over scans of any size, write the results.

- `pipeline.py`: the default restorer, a pipeline of stages with one job each: `deblock.py` takes out a
  scan's JPEG blocks, `detect.py` finds the destroyed pixels (the damage detector and the speck finder),
  `tone.py` corrects tone with smooth curves fitted to the U-Net (`guided.py`) when the photo needs it,
  `fill.py` inpaints what was found, `rims.py` fills the rims of it the blender network chooses,
  `focus.py` then undoes a soft focus.
- `restorers.py`: `load_restorer` for every model (pipeline, the U-Net, the study's seed DCGAN, the
  classical OpenCV baseline) and `restore_image` for one image.
- `tiling.py`: networks run tile by tile over large scans, seamlessly and in bounded memory.
- `files.py`: `restore_files` over files, folders and globs; never overwrites, never loses a result.
"""

from .files import plan_outputs, restore_files
from .restorers import (DEFAULT_CHECKPOINTS, DEFAULT_OVERLAP, DEFAULT_TILE, MODELS, WEIGHTS_DIR, Restorer,
                        classical_restorer, load_restorer, restore_image, restorer_from_model)
from .tiling import tiled_forward

__all__ = ["DEFAULT_CHECKPOINTS", "DEFAULT_OVERLAP", "DEFAULT_TILE", "MODELS", "WEIGHTS_DIR", "Restorer",
           "classical_restorer", "load_restorer", "plan_outputs", "restore_files", "restore_image",
           "restorer_from_model", "tiled_forward"]
