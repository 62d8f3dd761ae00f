"""Writes the image fixtures for tests/unit/test_image.c.

  tests/data/images/*.png, *.jpg   small images written by PIL (Debian's python3-pil)
  tests/data/images_decode.bin     what an independent decoder makes of them, and bilinear
                                   resizes computed here, as moka fixture tensors (float32)

Decoded pixels are PIL's (which uses libpng and libjpeg-turbo through its own code paths), put in
moka's layout: (C, H, W), colour planes in B, G, R order as OpenCV (and so Caffe) keeps them.
Gray versions of colour files: for JPEG, PIL's draft("L") asks libjpeg itself for luminance, as
OpenCV does; for PNG, PIL's own convert("L") (ITU-R 601 weights, which libpng's rgb_to_gray also
uses, rounded differently: the test allows 1 grey level there). 16-bit samples are reduced to
their high byte, computed here from the written array.

Resizes: OpenCV's INTER_LINEAR mapping written out in numpy, in floating point: output pixel d
samples source coordinate s = (d + 0.5) * src / dst - 0.5; i = floor(s), f = s - i; outside
[0, src - 1] the edge sample is taken alone. The result is rounded half up. OpenCV itself (and
moka) use 11-bit fixed-point weights, so the test allows 1 grey level. When python3-opencv is
importable, cv2.resize's own output is stored too ("cv2_*"), for a second comparison.

Run with Debian's interpreter: /usr/bin/python3 tests/ref/gen_images.py
"""
import os

import numpy as np
import torch
from PIL import Image

import moka_fixture

HERE = os.path.dirname(os.path.abspath(__file__))
IMG_DIR = os.path.join(HERE, "..", "data", "images")

try:
    import cv2  # noqa: F401
except ImportError:
    cv2 = None


def pattern(h, w, c, seed):
    """Smooth gradients plus noise, so both flat and busy regions are exercised."""
    rng = np.random.RandomState(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for k in range(c):
        base = 128 + 100 * np.sin(0.7 * x / (k + 1) + 0.4 * y * (k + 1) + k)
        planes.append(base + rng.uniform(-25, 25, size=(h, w)))
    a = np.stack(planes, axis=-1)
    return np.clip(np.rint(a), 0, 255).astype(np.uint8)


def chw_bgr(hwc):
    """(H, W, 3) RGB or (H, W) gray uint8 -> (C, H, W) float32, colour planes reversed."""
    a = np.asarray(hwc)
    if a.ndim == 2:
        return a[None].astype(np.float32)
    return a[:, :, ::-1].transpose(2, 0, 1).astype(np.float32).copy()


def bilinear(src, out_h, out_w):
    """src (C, H, W) float -> (C, out_h, out_w): OpenCV's INTER_LINEAR mapping, float maths."""

    def axis(n_src, n_dst):
        idx0 = np.zeros(n_dst, dtype=np.int64)
        idx1 = np.zeros(n_dst, dtype=np.int64)
        frac = np.zeros(n_dst)
        for d in range(n_dst):
            s = (d + 0.5) * n_src / n_dst - 0.5
            i = int(np.floor(s))
            f = s - i
            if i < 0:
                i, f = 0, 0.0
            if i >= n_src - 1:
                i, f = n_src - 1, 0.0
            idx0[d], idx1[d], frac[d] = i, min(i + 1, n_src - 1), f
        return idx0, idx1, frac

    y0, y1, fy = axis(src.shape[1], out_h)
    x0, x1, fx = axis(src.shape[2], out_w)
    fy = fy[None, :, None]
    fx = fx[None, None, :]
    top = src[:, y0][:, :, x0] * (1 - fx) + src[:, y0][:, :, x1] * fx
    bot = src[:, y1][:, :, x0] * (1 - fx) + src[:, y1][:, :, x1] * fx
    return np.floor(top * (1 - fy) + bot * fy + 0.5)


def main():
    os.makedirs(IMG_DIR, exist_ok=True)
    path = lambda name: os.path.join(IMG_DIR, name)  # noqa: E731
    out = {}

    # PNG: RGB, gray, RGBA, palette, 16-bit gray.
    rgb = pattern(10, 14, 3, 1)
    Image.fromarray(rgb, "RGB").save(path("rgb.png"))
    gray = pattern(7, 9, 1, 2)[:, :, 0]
    Image.fromarray(gray, "L").save(path("gray.png"))
    rgba = np.concatenate([pattern(5, 6, 3, 3), pattern(5, 6, 1, 4)], axis=-1)
    Image.fromarray(rgba, "RGBA").save(path("rgba.png"))
    pal = Image.fromarray(pattern(6, 8, 3, 5), "RGB").quantize(colors=16)
    pal.save(path("palette.png"))
    g16 = (pattern(5, 7, 1, 6)[:, :, 0].astype(np.uint16) * 257 + 77).astype(np.uint16)
    Image.fromarray(g16, "I;16").save(path("gray16.png"))

    # JPEG: baseline colour (4:2:0), gray, progressive colour.
    Image.fromarray(pattern(11, 13, 3, 7), "RGB").save(path("rgb.jpg"), quality=90)
    Image.fromarray(pattern(8, 10, 1, 8)[:, :, 0], "L").save(path("gray.jpg"), quality=90)
    Image.fromarray(pattern(9, 16, 3, 9), "RGB").save(path("progressive.jpg"), quality=85,
                                                       progressive=True)

    # What PIL decodes them to.
    def load(name, mode):
        with Image.open(path(name)) as im:
            if mode == "L" and name.endswith(".jpg") and im.mode == "RGB":
                im.draft("L", None)  # libjpeg's own luminance, as OpenCV requests it
                im.load()
                assert im.mode == "L"
                return np.asarray(im)
            return np.asarray(im.convert(mode))

    out["rgb_png_color"] = chw_bgr(load("rgb.png", "RGB"))
    assert (out["rgb_png_color"] == chw_bgr(rgb)).all()  # PNG is lossless
    out["rgb_png_gray"] = chw_bgr(load("rgb.png", "L"))
    out["gray_png_gray"] = chw_bgr(load("gray.png", "L"))
    out["gray_png_color"] = chw_bgr(load("gray.png", "RGB"))
    out["rgba_png_color"] = chw_bgr(rgba[:, :, :3])  # alpha dropped, not blended
    out["palette_png_color"] = chw_bgr(load("palette.png", "RGB"))
    out["gray16_png_gray"] = chw_bgr((g16 >> 8).astype(np.uint8))
    out["rgb_jpg_color"] = chw_bgr(load("rgb.jpg", "RGB"))
    out["rgb_jpg_gray"] = chw_bgr(load("rgb.jpg", "L"))
    out["gray_jpg_gray"] = chw_bgr(load("gray.jpg", "L"))
    out["gray_jpg_color"] = chw_bgr(load("gray.jpg", "RGB"))
    out["progressive_jpg_color"] = chw_bgr(load("progressive.jpg", "RGB"))

    # Resizes of rgb.png's (3, 10, 14) BGR pixels: exact 2x down, up, mixed, identity, 1 x 1.
    src = out["rgb_png_color"].astype(np.float64)
    for oh, ow in [(5, 7), (17, 23), (4, 19), (10, 14), (1, 1), (25, 3)]:
        out["resize_%dx%d" % (oh, ow)] = bilinear(src, oh, ow).astype(np.float32)
        if cv2 is not None:
            hwc = np.ascontiguousarray(src.transpose(1, 2, 0).astype(np.uint8))
            r = cv2.resize(hwc, (ow, oh), interpolation=cv2.INTER_LINEAR)
            out["cv2_resize_%dx%d" % (oh, ow)] = r.reshape(oh, ow, 3).transpose(2, 0, 1).astype(
                np.float32)

    moka_fixture.write("images_decode", {k: torch.from_numpy(np.ascontiguousarray(v))
                                         for k, v in out.items()})
    print("wrote %d tensors%s" % (len(out), "" if cv2 is not None else " (no cv2: no cv2_*)"))


if __name__ == "__main__":
    main()
