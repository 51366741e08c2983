"""Regenerate videos/sample.mp4, the bundled sample (its ground truth comes from the same code).

    python videos/make_sample.py

The scene is described in bgsub/eval/synthetic.py; tests rebuild the ground truth
with ``bgsub.eval.synthetic.render(bgsub.eval.synthetic.SAMPLE)``.
"""

from pathlib import Path

from bgsub.eval.synthetic import SAMPLE, write_video

if __name__ == "__main__":
    target = Path(__file__).with_name("sample.mp4")
    count = write_video(str(target), SAMPLE)
    print(f"wrote {target} ({count} frames, {target.stat().st_size / 1e6:.1f} MB)")
