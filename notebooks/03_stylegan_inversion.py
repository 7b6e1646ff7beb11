# %% [markdown]
# # 03 · Robust unsupervised StyleGAN inversion (W → W+ → W++)
#
# The study *Image Repair Using Deep Convolutional GANs* tried Poirier-Ginter & Lalonde's **Robust
# Unsupervised StyleGAN Image Restoration** (CVPR 2023) and gave up: the code was unclear and too slow.
# Here it is in plain PyTorch, on the CPU if need be.
#
# The idea needs no training at all. A StyleGAN2 trained on faces (FFHQ) can draw any face; restoring a
# damaged portrait y means finding the clean face x = G(w) that, **once damaged the same way**, looks
# like y. The damage is a differentiable model f̂ (downscaling, noise, JPEG, a scratch mask, or our
# `old-photo`: grayscale, blur, faded tones and a damage mask), and the search minimises
# LPIPS(f̂(G(w)), y) over an image pyramid, plus a little L1, in **three phases**:
#
# | phase | latent | vectors | steps | learning rate | what it fixes |
# |---|---|---|---|---|---|
# | I | W | 1 × 512 | 150 | 0.08 | the face: pose, identity, lighting |
# | II | W+ | one per layer (N_L) | 150 | 0.02 | coarse-to-fine attributes separately |
# | III | W++ | one per output filter (N_F) | 150 | 0.005 | the details, staying near the face manifold |
#
# Each phase starts by copying the previous latent (the image does not change) and every step moves each
# latent vector by exactly `lr · g/‖g‖` (normalized gradient descent, no Adam).
#
# **Quick mode** (CI, offline) uses a *tiny random* generator for a few steps: the pictures below are then
# meaningless blobs and only show that the machinery runs. **On Kaggle** attach FFHQ StyleGAN2 weights as a
# data source (see the last section) and the same cells restore the portraits.

# %%
import os
import sys
from pathlib import Path

# On Kaggle the project's source is an attached dataset, at /kaggle/input/<slug> or
# /kaggle/input/datasets/<owner>/<slug>: the folder holding helpers/ goes first on the path.
inputs = Path(os.environ.get("REPAIR_INPUT_ROOT", "/kaggle/input"))
sys.path[:0] = [str(p.parents[1]) for p in sorted(inputs.glob("**/helpers/env.py"))[:1]]
from helpers import env  # on Kaggle, "No module named 'helpers'" means: attach <you>/old-photo-repair-src

env.prepare_kaggle()  # on Kaggle: names any attachment missing, installs wheels offline; else nothing

QUICK = env.quick_mode()
print(env.describe())

# %% [markdown]
# ## The generator
# Trained weights are looked for under the input root (`/kaggle/input` on Kaggle): our `.safetensors`, a
# rosinality checkpoint (`stylegan2-ffhq-config-f.pt`, read with `weights_only=True`) or an NVIDIA
# stylegan2-ada-pytorch pickle (`ffhq.pkl`, rebuilt from tensors only — no code from it runs). A foreign
# file is converted once to our safetensors in the working folder.

# %%
import torch

from helpers.models.stylegan2 import compact_config, tiny_config
from helpers.stylegan_weights import weights_or_random

if env.on_kaggle() and not QUICK:
    env.find_input("stylegan2")  # stops here, naming the data set to attach, when no weights are attached
torch.manual_seed(0)
if QUICK:  # a shared CI CPU: one thread keeps OpenMP workers from spinning against other jobs
    torch.set_num_threads(1)
fallback = tiny_config(64) if QUICK else compact_config(256)
G, about = weights_or_random(env.input_root(), env.working_root(), fallback)
G = G.to(env.device())
print(about)

# %%
# NBVAL_CHECK_OUTPUT
print(f"resolution {G.size} px, style dimension {G.style_dim}")
print(f"W: 1 vector, W+: N_L = {G.n_latent} vectors, W++: N_F = {G.n_filters} vectors (one per output filter)")
w = G.mean_latent()
with torch.no_grad():
    same = [torch.allclose(G.synthesis(w), G.synthesis(x), atol=1e-5)
            for x in (G.w_to_wplus(w), G.wplus_to_wplusplus(G.w_to_wplus(w)))]
print("repeating W into W+ and W+ into W++ leaves the image unchanged:", all(same))

# %% [markdown]
# ## The loss
# LPIPS needs torchvision's VGG16 ImageNet weights: an attached `vgg16-397923af.pth` (anywhere under
# /kaggle/input), the torch hub cache, or a download where internet is on; without them the loss falls
# back to multiscale L1 + SSIM and says so.

# %%
from helpers.losses import make_loss

loss_fn = make_loss()
print("loss:", loss_fn.kind)

# %% [markdown]
# ## The portraits
# Two real old portraits bundled with the project (from *Bringing Old Photos Back to Life*, MIT), cropped
# to a centred square at the generator's resolution.

# %%
from helpers import plots
from helpers.invert import align_square, image_tensor, to_numpy
from helpers.io import read_image

portraits = {}
for name in ("bopbtl_scratch_b", "bopbtl_scratch_c"):
    img, note = align_square(read_image(env.samples_dir() / "old" / f"{name}.png"), G.size)
    portraits[name] = image_tensor(img)
    print(name, "->", note or "unchanged")
plots.image_grid([[to_numpy(p) for p in portraits.values()]], col_labels=list(portraits), cell_inches=2.5)

# %% [markdown]
# ## Every degradation model, on a known answer
# To see what each f̂ does, we damage a portrait ourselves with the *true* degradation (a real JPEG, real
# shot noise, an antialiased downscale, white scratches, our aging's `daguerreotype` preset), invert, and
# compare with the undamaged picture. The live preview updates while the phases run.

# %%
from helpers import degradations as D
from helpers.invert import LivePreview, invert

STEPS = (10, 10, 10) if QUICK else (150, 150, 150)
clean = portraits["bopbtl_scratch_b"][None]
scratches = D.random_strokes(G.size, strokes=6, width=0.03, seed=0)
old_photo, aged = D.old_photo_from_aging(clean[0], preset="daguerreotype", seed=0)
experiments = {
    "upsampling": (D.Upsampling(4), None),
    "denoising": (D.Denoising(24), None),
    "deartifacting": (D.Deartifacting(12), None),
    "inpainting": (D.Inpainting(scratches), None),
    "old-photo": (old_photo, aged[None]),
}
observations = {name: (obs if obs is not None else deg.simulate(clean, seed=0))[0]
                for name, (deg, obs) in experiments.items()}

results = {}
for name, (deg, _) in experiments.items():
    print(name)
    preview = LivePreview(observations[name], every=5 if QUICK else 25, size=G.size)
    results[name] = invert(G, observations[name], deg, steps=STEPS, loss_fn=loss_fn, callback=preview,
                           progress=not QUICK)

# %% [markdown]
# ## Phase by phase
# Each row: the observation, then the image at the end of phases I (W), II (W+) and III (W++).

# %%
from helpers.invert import progression_figure

progression_figure(observations, results)

# %%
from helpers.metrics import psnr

for name, result in results.items():
    print(f"{name:>14}: PSNR to the undamaged portrait {psnr(to_numpy(clean[0]), to_numpy(result.image)):5.2f} dB "
          f"in {result.seconds:5.1f} s; final loss per phase "
          + ", ".join(f"{p} {v:.3f}" for p, v in result.final_losses().items()))

# %% [markdown]
# ## Loss curves
# The loss falls within each phase; at each boundary the new freedom (W+, then W++) lets it fall further.

# %%
from helpers.invert import loss_curve_figure

for name, result in results.items():
    display(loss_curve_figure(result, name))

# %% [markdown]
# ## Real damage: the restorer's mask, then inversion
# For real old photos there is no clean original and no known mask. The project's restorer predicts a
# damage mask (its mask head; the classical baseline when no trained restorer is bundled), and `old-photo`
# uses it: scratched pixels are ignored, the rest must match after grayscale, blur and a fitted tone curve.

# %%
import numpy as np

from helpers import HelpersError
from helpers.restore import load_restorer, restore_image

try:
    restorer = load_restorer("unet")
except HelpersError as err:
    print(f"no trained restorer ({err}); using the classical baseline")
    restorer = load_restorer("classical")

rows = []
for name, portrait in portraits.items():
    pixels = (to_numpy(portrait) * 255).round().astype(np.uint8)
    restored, mask = restore_image(pixels, restorer, rgb=True)
    damage = None if mask is None else torch.from_numpy(mask > 127).float()
    result = invert(G, portrait, D.OldPhoto(damage), steps=STEPS, loss_fn=loss_fn, progress=not QUICK,
                    callback=LivePreview(portrait, every=5 if QUICK else 25, size=G.size))
    rows.append([pixels, mask, restored, to_numpy(result.image)])
plots.image_grid(rows, row_labels=list(portraits),
                 col_labels=["old photo", "restorer's mask", f"restorer ({restorer.name})", "inversion (W++)"])

# %% [markdown]
# ## Running it for real (Kaggle) and from the command line
# - Attach a dataset holding FFHQ StyleGAN2 weights, e.g. rosinality's conversion of NVIDIA's config-f
#   `stylegan2-ffhq-config-f.pt` (1024 px) as `/kaggle/input/stylegan2-ffhq-weights/stylegan2-ffhq-config-f.pt`,
#   or NVIDIA's `ffhq.pkl` from stylegan2-ada-pytorch. NVIDIA's weights are licensed for non-commercial use.
# - Put torchvision's `vgg16-397923af.pth` into that dataset too, for LPIPS: the kernel runs with internet
#   off, and without the file the L1 + SSIM fallback is used (it says so).
# - The same restoration from a terminal:
#   `python -m helpers invert samples/old/bopbtl_scratch_b.png --degradation old-photo --out runs/invert --generator stylegan2-ffhq-config-f.pt`
#   (`--mask FILE` adds a damage mask; `--steps 150,150,150` sets the phases.)
