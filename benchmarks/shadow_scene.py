"""How much of a cast shadow leaves the foreground, and how much of the objects goes with it.

    python benchmarks/shadow_scene.py [--saturation S] [--noise N] [--set key=value ...]

A synthetic scene built for it: a smooth coloured texture (the one of
bgsub.eval.synthetic, its colours scaled towards grey by S) under sensor noise,
learned for 150 frames; then, frame after frame, an object crosses with its
shadow below it.  The shadow darkens the background by 0.5, 0.6, 0.7 and 0.8
in turn and tints it as skylight does (blue x1.04, red x0.97); the objects
are black, grey, white, red, green and brown.  Prints, with shadows off and
with the given settings: the share of shadow pixels that are not foreground
(255), the share of object pixels that are, and the share of other pixels
that are not 0.
"""

from __future__ import annotations

import argparse
import tomllib

import cv2
import numpy as np

from bgsub import MixtureMasker

OBJECTS = [(30, 30, 30), (90, 90, 90), (230, 230, 230), (40, 40, 200), (40, 160, 40),
           (160, 80, 40)]
FACTORS = (0.5, 0.6, 0.7, 0.8)
TINT = np.array([1.04, 1.0, 0.97])  # BGR: skylight is bluer than sunlight
H, W = 120, 160


def texture(rng: np.random.Generator, saturation: float) -> np.ndarray:
    coarse = rng.integers(40, 215, (H // 8 + 1, W // 8 + 1, 3)).astype(np.uint8)
    smooth = cv2.resize(coarse, (W, H), interpolation=cv2.INTER_CUBIC).astype(np.float32)
    fine = rng.normal(0, 12, (H, W, 3)).astype(np.float32)
    image = np.clip(smooth + cv2.GaussianBlur(fine, (0, 0), 1.0), 0, 255)
    grey = image.mean(axis=2, keepdims=True)
    return grey + saturation * (image - grey)


def score(params: dict, saturation: float, noise: float, seed: int = 0) -> tuple:
    rng = np.random.default_rng(seed)
    background = texture(rng, saturation)

    def noisy(image):
        return np.clip(np.rint(image + rng.normal(0, noise, image.shape)), 0, 255).astype(np.uint8)

    masker = MixtureMasker(**params)
    for _ in range(150):
        masker.apply(noisy(background))
    counts = np.zeros(3)
    totals = np.zeros(3)
    t = 0
    for factor in FACTORS:
        for colour in OBJECTS:
            for _ in range(6):
                t += 1
                x0 = (t * 7) % (W - 40)
                frame = background.copy()
                obj = np.zeros((H, W), bool)
                obj[30:70, x0:x0 + 25] = True
                shadow = np.zeros((H, W), bool)
                shadow[70:100, x0 + 5:x0 + 40] = True
                frame[shadow] = frame[shadow] * factor * TINT
                frame[obj] = colour
                mask = masker.apply(noisy(frame))
                rest = ~(shadow | obj)
                counts += [np.count_nonzero(mask[shadow] != 255),
                           np.count_nonzero(mask[obj] == 255), np.count_nonzero(mask[rest] != 0)]
                totals += [shadow.sum(), obj.sum(), rest.sum()]
    return tuple(counts / totals)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--saturation", type=float, default=1.0)
    ap.add_argument("--noise", type=float, default=3.0)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="a [model] parameter, as TOML (shadow_threshold=2.0)")
    args = ap.parse_args(argv)
    params = tomllib.loads("\n".join(args.set))
    print(f"{'settings':40s} {'shadow not fg':>13s} {'object fg':>9s} {'rest not 0':>10s}")
    for name, p in (("shadows off", {**params, "shadows": False}),
                    (" ".join(args.set) or "defaults", params)):
        shadow, obj, rest = score(p, args.saturation, args.noise)
        print(f"{name:40s} {shadow:13.3f} {obj:9.3f} {rest:10.4f}")


if __name__ == "__main__":
    main()
