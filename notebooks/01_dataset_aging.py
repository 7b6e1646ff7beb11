# %% [markdown]
# # 01 · Aging clean photos into training pairs
#
# A restorer learns from pairs: a damaged photo and the clean original. Real old photographs come without
# their originals, so the study *Image Repair Using Deep Convolutional GANs* made the pairs itself: it
# took Imagenette (ten ImageNet classes, 9,469 training and 3,925 validation photos), shrank them to
# 256×256 grayscale and aged them with four effects — scratches, stains, reduced contrast and
# overexposure.
#
# We keep that recipe as the `seed` preset and widen it: **17 degradation operators**, each with a
# strength from 0 (untouched) to 1, and **8 presets** that mix them (`seed`, `old-print`,
# `daguerreotype`, `cracked`, `local`, `scan`, `mild`, `heavy`). Every operator also reports a **damage
# mask** — the pixels whose content is gone and visibly changed (scratches, crack networks, foxing spots,
# dust, creases, torn corners and edges, the mat), which the repair pipeline's detector learns to find.
# The same seed always gives the same bytes.
#
# This notebook shows every operator, lets you play with them, and then builds the aged data set.
# In quick mode (CI, offline) it uses the ten bundled sample photos; on Kaggle it ages Imagenette.

# %%
import os
import sys
from pathlib import Path

# On Kaggle the project's source is an attached dataset, at /kaggle/input/<slug> or
# /kaggle/input/datasets/<owner>/<slug>: the folder holding helpers/ goes first on the path.
inputs = Path(os.environ.get("REPAIR_INPUT_ROOT", "/kaggle/input"))
sys.path[:0] = [str(p.parents[1]) for p in sorted(inputs.glob("**/helpers/env.py"))[:1]]
from helpers import env  # on Kaggle, "No module named 'helpers'" means: attach <you>/old-photo-repair-src

env.prepare_kaggle("imagenette")  # on Kaggle: names any attachment missing, installs wheels offline; else nothing

QUICK = env.quick_mode()
print(env.describe())

# %% [markdown]
# ## The photos
# Off Kaggle: the bundled clean samples (CC BY 4.0 DreamBooth photos, held out of training).
# On Kaggle: Imagenette, attached to the kernel as a data source (no download, internet may stay off).

# %%
from helpers import data, plots
from helpers.age_folder import prepare_clean
from helpers.io import find_images, read_image

if env.on_kaggle():
    source = env.find_input("imagenette")
    photo_paths = find_images([data.imagenette_split(source, "train")])[0][::1000]  # about one per class
else:
    source = env.samples_dir() / "clean"
    photo_paths = data.bundled_samples("clean")

photos = {p.stem.removeprefix("dreambooth_"): prepare_clean(read_image(p), 256, gray=False)
          for p in photo_paths[:6]}
plots.image_grid([list(photos.values())], col_labels=list(photos), cell_inches=1.6)

# %% [markdown]
# ## Operators and presets
# Operators run in the order a print lives its life: exposure and development, toning, the paper,
# surface damage, the mat, tears, and last the scan. A preset lists, for each operator it uses, the
# probability of applying it and the range its strength is drawn from.

# %%
# NBVAL_CHECK_OUTPUT
from helpers.aging import OPERATORS, PRESETS

print(f"{len(OPERATORS)} operators:", ", ".join(OPERATORS))
for name, entries in PRESETS.items():
    print(f"{name:>13}: " + ", ".join(f"{op} (p={p:g}, {lo:g}-{hi:g})" for op, p, lo, hi in entries))

# %% [markdown]
# ## Every operator across strengths 0 … 1
# One seed, so within a row only the strength changes: more scratches, darker stains, stronger fading.
# Strength 0 is the untouched photo.

# %%
example = photos["clock_00"] if "clock_00" in photos else next(iter(photos.values()))  # a plain background
plots.operator_strength_grid(example, strengths=(0, 0.25, 0.5, 0.75, 1.0), seed=1)

# %% [markdown]
# ## Real damage beside ours
# The detector can only find what the aging shows it. Real scratched prints (left: two of the bundled
# real photos, from Bringing Old Photos Back to Life, MIT) show *networks* of white emulsion cracks —
# branching, 1–6 px wide, with flakes where the gelatine came off — more than long straight scratches.
# The `cracks` operator draws those (random walks with momentum that fork), and the `cracked` preset
# ages a print the way these look (right: two bundled samples aged with it).

# %%
from helpers.aging import age_image

real = [read_image(p) for p in data.bundled_samples("old") if "scratch" in p.name][:2]
synthetic = [age_image(img, "cracked", seed=i + 3).image for i, img in enumerate(list(photos.values())[:2])]
plots.image_grid([real + synthetic], col_labels=["real print", "real print", "cracked preset", "cracked preset"],
                 cell_inches=2.6)

# %% [markdown]
# ## Try it yourself
# Pick a preset to see its random draw for the seed (the sliders show the middle of each operator's
# range); move any slider to switch to **custom** and age with exactly the slider values. The preview
# shows clean, aged and the damage mask side by side. (Widgets need a live kernel; the figure below
# shows the explorer's starting state for static viewers.)

# %%
from helpers.widgets import AgingExplorer

explorer = AgingExplorer(photos, preset="old-print", seed=0)
explorer

# %%
aged, mask = explorer.render()
plots.image_grid([[explorer.images[explorer.picture.value], aged, mask]],
                 col_labels=["clean", f"aged ({explorer.preset.value})", "damage mask"], cell_inches=2.4)

# %% [markdown]
# ## Building the aged data set
# `age_folder` (also `python -m helpers age SRC --out DIR` and `data_prep/age_dataset.py` for
# Imagenette) writes `aged/`, `clean/`, `masks/` and a `manifest.csv` with each file's seed, preset and
# operator parameters. It resumes where it stopped, runs in parallel workers, and skips — and names —
# unreadable files. As in the study: 256×256 grayscale.

# %%
import tempfile
from pathlib import Path

from helpers.age_folder import AgeSettings

settings = AgeSettings(presets=("seed", "old-print", "daguerreotype"), seed=0, size=256, gray=True, masks=True)
out = (Path(tempfile.mkdtemp(prefix="aged_samples_")) if QUICK or not env.on_kaggle()
       else env.working_root() / "aged_imagenette")
report = data.age_imagenette(source, out, ("train", "val"), settings, workers=2)  # flat folders: out/all
built = report.payload["splits"]

# %%
# NBVAL_CHECK_OUTPUT
from collections import Counter

for split, result in built.items():
    print(f"{split}: {result['written'] + result['already_done']} pairs "
          f"({result['written']} written now, {result['failed']} failed)")
    for wnid, count in result["classes"].items():
        print(f"   {data.IMAGENETTE_CLASSES.get(wnid, wnid or '(no class folders)'):>20}: {count}")
pairs = data.PairedFolderDataset(out / next(iter(built)))
print("presets used:", dict(sorted(Counter(row["preset"] for row in pairs.rows).items())))

# %%
picks = range(0, len(pairs), max(1, len(pairs) // 4))
triples = [pairs[i] for i in picks][:4]
plots.image_grid([[t[1][0].numpy(), t[0][0].numpy(), t[2][0].numpy()] for t in triples],
                 row_labels=[pairs.rows[i]["preset"] for i in picks][:4],
                 col_labels=["clean", "aged", "mask"], cell_inches=2.0)

# %% [markdown]
# ## Or age on the fly
# For training, `AgedDataset` skips the disk: it ages any folder of clean photos afresh for every item.
# Item *i* of epoch *e* is always the same, and `set_epoch` gives each epoch new damage.

# %%
# NBVAL_CHECK_OUTPUT
import torch

on_the_fly = data.AgedDataset(data.imagenette_split(source, "train"), size=128, presets=["seed", "heavy"], seed=0, train=True)
on_the_fly.set_epoch(0)
aged_batch, clean_batch, mask_batch = next(iter(torch.utils.data.DataLoader(on_the_fly, batch_size=4)))
print("aged", tuple(aged_batch.shape), "clean", tuple(clean_batch.shape), "mask", tuple(mask_batch.shape))
print("values in [0, 1]:", bool(aged_batch.min() >= 0 and aged_batch.max() <= 1))
