"""Pictures that are not chest X-rays, to measure and test the guard (pneumo.reading.guard).

Made here, or taken from what installed packages ship (scikit-learn's and matplotlib's sample
images, matplotlib's MRI slice and elevation maps): photos in colour and gray, crops of them,
documents, screenshots, charts, blank and noise images, gradients and textures. Deterministic.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

SIZE = 512
LOREM = (
    "Patient was seen in clinic today. History of cough and fever for three days. "
    "Lungs clear on auscultation. Plan: rest, fluids, review in one week if not better. "
    "Results are listed in the table below and attached to the record."
).split()


def _font(size: int) -> ImageFont.ImageFont:
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # very old Pillow
        return ImageFont.load_default()


def _package_photos() -> list[tuple[str, Image.Image]]:
    photos = []
    try:
        import sklearn.datasets

        for path in sklearn.datasets.load_sample_images().filenames:
            photos.append((Path(path).stem, Image.open(path).convert("RGB")))
    except Exception:  # noqa: BLE001 - a missing sample never stops the measurement
        pass
    try:
        import matplotlib.cbook as cbook

        for name in ("grace_hopper.jpg", "Minduka_Present_Blue_Pack.png", "logo2.png"):
            photos.append((Path(name).stem, Image.open(cbook.get_sample_data(name, asfileobj=False)).convert("RGB")))
        with gzip.open(cbook.get_sample_data("s1045.ima.gz", asfileobj=False)) as f:  # an MRI slice (head)
            mri = np.frombuffer(f.read(), np.uint16).reshape(256, 256).astype(np.float64)
        photos.append(("mri_slice", Image.fromarray(np.round(mri / mri.max() * 255).astype(np.uint8))))
        for name, key in (("jacksboro_fault_dem.npz", "elevation"), ("topobathy.npz", "topo")):
            with np.load(cbook.get_sample_data(name, asfileobj=False)) as f:
                field = f[key].astype(np.float64)
            field = (field - field.min()) / max(np.ptp(field), 1e-9)
            photos.append((Path(name).stem, Image.fromarray(np.round(field * 255).astype(np.uint8)).resize((SIZE, SIZE))))
    except Exception:  # noqa: BLE001
        pass
    return photos


def _photo_variants(photos: list[tuple[str, Image.Image]]) -> list[tuple[str, Image.Image]]:
    out = []
    for name, photo in photos:
        w, h = photo.size
        out.append((f"photo/{name}", photo))
        out.append((f"photo/{name}_gray", photo.convert("L")))
        out.append((f"photo/{name}_rot90", photo.convert("L").rotate(90, expand=True)))
        for i, (fx, fy) in enumerate(((0, 0), (0.5, 0), (0, 0.5), (0.25, 0.25))):
            box = (int(fx * w), int(fy * h), int(fx * w + w / 2), int(fy * h + h / 2))
            crop = photo.crop(box)
            out.append((f"photo/{name}_crop{i}", crop if i % 2 else crop.convert("L")))
    return out


def _document(rng: np.random.Generator, i: int) -> Image.Image:
    page = Image.new("L", (SIZE, int(SIZE * 1.3)), 255 if i % 3 else 235)
    draw = ImageDraw.Draw(page)
    font, y = _font(int(rng.integers(12, 22))), 30
    draw.text((30, y), "Discharge summary" if i % 2 else "Laboratory report", fill=0, font=_font(28))
    y += 50
    while y < page.height - 40:
        words = " ".join(rng.choice(LOREM, size=int(rng.integers(5, 12))))
        draw.text((30, y), words, fill=int(rng.integers(0, 60)), font=font)
        y += int(font.size * 1.6) if hasattr(font, "size") else 20
        if i % 4 == 0 and rng.random() < 0.15:  # a table
            for r in range(4):
                draw.rectangle((30, y, page.width - 30, y + 22), outline=0)
                y += 22
    return page


def _screenshot(rng: np.random.Generator, i: int) -> Image.Image:
    dark = i % 2 == 1
    bg = (32, 33, 36) if dark else (245, 246, 248)
    fg = (220, 220, 220) if dark else (30, 30, 30)
    shot = Image.new("RGB", (SIZE + 128, SIZE), bg)
    draw = ImageDraw.Draw(shot)
    draw.rectangle((0, 0, shot.width, 36), fill=(60, 64, 70) if dark else (222, 226, 230))
    draw.rectangle((0, 36, 150, shot.height), fill=(45, 47, 52) if dark else (233, 236, 240))
    for k in range(8):
        draw.text((12, 50 + 30 * k), f"Menu item {k + 1}", fill=fg, font=_font(14))
    for k in range(int(rng.integers(3, 7))):
        x0, y0 = int(rng.integers(170, 400)), int(rng.integers(60, 400))
        draw.rounded_rectangle((x0, y0, x0 + 180, y0 + 40), radius=6, fill=tuple(int(v) for v in rng.integers(40, 220, 3)))
        draw.text((x0 + 12, y0 + 12), "Button", fill=(255, 255, 255), font=_font(14))
    for k in range(10):
        draw.text((170, 60 + 40 * k), " ".join(rng.choice(LOREM, size=6)), fill=fg, font=_font(13))
    return shot if i % 3 else shot.convert("L")


def _chart(rng: np.random.Generator, i: int) -> Image.Image:
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5, 4), dpi=100)
    x = np.arange(20)
    kind = i % 4
    if kind == 0:
        ax.plot(x, np.cumsum(rng.normal(size=20)), marker="o")
    elif kind == 1:
        ax.bar(x, rng.random(20))
    elif kind == 2:
        ax.scatter(rng.normal(size=80), rng.normal(size=80))
    else:
        ax.imshow(rng.random((12, 12)), cmap="gray" if i % 2 else "viridis")
    ax.set_title(f"Figure {i}")
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    image = Image.open(buffer)
    image.load()
    return image.convert("L") if i % 2 else image.convert("RGB")


def _plain(rng: np.random.Generator, i: int) -> Image.Image:
    yy, xx = np.mgrid[0:SIZE, 0:SIZE] / SIZE
    fields = [
        np.full((SIZE, SIZE), 1.0),
        np.zeros((SIZE, SIZE)),
        np.full((SIZE, SIZE), 0.5),
        0.5 + 0.01 * rng.normal(size=(SIZE, SIZE)),
        xx,
        yy,
        np.hypot(xx - 0.5, yy - 0.5),
        rng.random((SIZE, SIZE)),
        ((xx * 8).astype(int) + (yy * 8).astype(int)) % 2,
        0.5 + 0.5 * np.sin(xx * 40),
        0.5 + 0.5 * np.sin(np.hypot(xx - 0.5, yy - 0.5) * 60),
        np.clip(rng.normal(0.5, 0.25, (SIZE, SIZE)), 0, 1),
    ]
    return Image.fromarray(np.round(np.clip(fields[i % len(fields)], 0, 1) * 255).astype(np.uint8))


def _smooth_scene(rng: np.random.Generator, i: int) -> Image.Image:
    """Random smooth fields and blobs: gray 'natural-looking' pictures with no chest in them."""
    coarse = rng.random((4 + i % 5, 4 + i % 5))
    field = np.asarray(Image.fromarray(np.round(coarse * 255).astype(np.uint8)).resize((SIZE, SIZE), Image.Resampling.BICUBIC), dtype=np.float64)
    image = Image.fromarray(np.clip(field, 0, 255).astype(np.uint8))
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 8))):
        x0, y0, r = int(rng.integers(0, SIZE)), int(rng.integers(0, SIZE)), int(rng.integers(20, 120))
        draw.ellipse((x0 - r, y0 - r, x0 + r, y0 + r), fill=int(rng.integers(0, 256)))
    return image.filter(ImageFilter.GaussianBlur(3))


def non_xray_images(seed: int = 0) -> list[tuple[str, Image.Image]]:
    """At least 100 (name, picture) pairs, none of them a chest X-ray: the measurement set (seed 0)."""
    return _photo_variants(_package_photos()) + generated_pictures(seed)


def generated_pictures(seed: int) -> list[tuple[str, Image.Image]]:
    """The generated families alone (64 pictures a seed): documents, screenshots, charts, plain
    pictures, smooth scenes."""
    rng = np.random.default_rng(seed)
    images = [(f"document/{i}", _document(rng, i)) for i in range(14)]
    images += [(f"screenshot/{i}", _screenshot(rng, i)) for i in range(12)]
    images += [(f"chart/{i}", _chart(rng, i)) for i in range(12)]
    images += [(f"plain/{i}", _plain(rng, i)) for i in range(12)]
    images += [(f"scene/{i}", _smooth_scene(rng, i)) for i in range(14)]
    return images


def fitting_non_xrays(seeds: range = range(1, 11)) -> list[tuple[str, str, Image.Image]]:
    """Non-X-rays for fitting a check (campaign g7), disjoint from the measurement set: scikit-image's
    bundled sample images (skimage.data; each function's documentation gives its source and terms)
    with the variants made of a photo, and new draws of the generated families. (name, group, picture):
    a photo and its variants share a group, so that a fold never splits them."""
    import skimage.data

    photos = []
    for name in ("astronaut", "brick", "camera", "cell", "chelsea", "clock", "coffee", "coins", "colorwheel", "grass", "gravel",
                 "horse", "hubble_deep_field", "immunohistochemistry", "logo", "microaneurysms", "moon", "page", "retina", "rocket",
                 "shepp_logan_phantom", "text"):
        try:
            array = np.asarray(getattr(skimage.data, name)())
        except Exception:  # noqa: BLE001 - a sample this version lacks (or would download) is skipped
            continue
        if array.dtype == bool:
            array = array.astype(np.uint8) * 255
        elif array.dtype != np.uint8:
            array = np.round((array - array.min()) / max(float(np.ptp(array)), 1e-9) * 255).astype(np.uint8)
        photos.append((name, Image.fromarray(array[..., :3] if array.ndim == 3 else array).convert("RGB")))
    out = [(name, name.split("/")[1].split("_crop")[0].split("_gray")[0].split("_rot90")[0], picture)
           for name, picture in _photo_variants(photos)]
    for seed in seeds:
        out += [(f"{name}@{seed}", f"{name}@{seed}", picture) for name, picture in generated_pictures(seed)]
    return out
