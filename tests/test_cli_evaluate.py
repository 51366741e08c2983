"""``bgsub eval`` end to end on small CDnet-layout folders generated here."""

import json
import os

import cv2
import numpy as np
import pytest

from bgsub import MixtureMasker
from bgsub.config import PostprocessConfig
from bgsub.eval.cdnet import OPENCV_SEED
from bgsub.model.postprocess import Postprocessor
from bgsub.eval.synthetic import SceneSpec, render
from kit import bgsub

METRIC_KEYS = ["recall", "specificity", "fpr", "fnr", "pwc", "precision", "f_measure"]
FRAMES = 36
FIRST = 11  # temporalROI: frames 11..36 are scored


def cdnet_labels(gt):
    """Give a 0/255 mask CDnet's other labels: 170 rims, 50 shadows, 85 top rows."""
    kernel = np.ones((3, 3), np.uint8)
    rim = (cv2.dilate(gt, kernel) > 0) & (cv2.erode(gt, kernel) == 0)
    below = np.zeros_like(gt)
    below[3:] = gt[:-3]
    out = gt.copy()
    out[(below > 0) & (gt == 0)] = 50
    out[rim] = 170
    out[:3] = 85
    return out


def write_sequence(root, seed, roi=False):
    (root / "input").mkdir(parents=True)
    (root / "groundtruth").mkdir()
    spec = SceneSpec(width=80, height=56, frames=FRAMES, seed=seed)
    for i, (frame, gt) in enumerate(render(spec), start=1):
        cv2.imwrite(str(root / "input" / f"in{i:06d}.jpg"), frame)
        cv2.imwrite(str(root / "groundtruth" / f"gt{i:06d}.png"), cdnet_labels(gt))
    (root / "temporalROI.txt").write_text(f"{FIRST} {FRAMES}\n")
    if roi:
        region = np.full((spec.height, spec.width), 255, np.uint8)
        region[:, :12] = 0
        cv2.imwrite(str(root / "ROI.bmp"), region)
    return root


@pytest.fixture(scope="module")
def sequences(tmp_path_factory):
    base = tmp_path_factory.mktemp("cdnet")
    return [write_sequence(base / "alpha", 5, roi=True), write_sequence(base / "beta", 6)]


def plain_counts(mask, gt, roi):
    """CDnet's rules written out: which pixels count, and as what."""
    counted = np.isin(gt, [0, 50, 255]) & roi
    said_fg = mask == 255
    is_fg = gt == 255
    return {"tp": int((counted & said_fg & is_fg).sum()),
            "fp": int((counted & said_fg & ~is_fg).sum()),
            "fn": int((counted & ~said_fg & is_fg).sum()),
            "tn": int((counted & ~said_fg & ~is_fg).sum())}


def plain_metrics(c):
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    recall, precision = tp / (tp + fn), tp / (tp + fp)
    return {"recall": recall, "specificity": tn / (tn + fp), "fpr": fp / (fp + tn),
            "fnr": fn / (tp + fn), "pwc": 100 * (fn + fp) / (tp + fn + fp + tn),
            "precision": precision, "f_measure": 2 * precision * recall / (precision + recall)}


def independent_scores(seq, make):
    """Run a subtractor over the folder's frames here and count with plain_counts."""
    roi_path = seq / "ROI.bmp"
    roi = cv2.imread(str(roi_path), cv2.IMREAD_GRAYSCALE) > 0 if roi_path.exists() else True
    sub = make()
    cv2.setRNGSeed(OPENCV_SEED)  # as bgsub eval does for each sequence: KNN draws from it
    total = {"tp": 0, "fp": 0, "fn": 0, "tn": 0}
    masks = []
    for i in range(1, FRAMES + 1):
        mask = sub(cv2.imread(str(seq / "input" / f"in{i:06d}.jpg")))
        masks.append(mask.copy())
        if i >= FIRST:
            gt = cv2.imread(str(seq / "groundtruth" / f"gt{i:06d}.png"), cv2.IMREAD_GRAYSCALE)
            for key, value in plain_counts(mask, gt, roi).items():
                total[key] += value
    return total, masks


def table_rows(text, title_start):
    """{method: [7 numbers]} of the table printed after the line starting with *title_start*."""
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(title_start))
    assert lines[start + 1].split() == ["method", "Recall", "Specificity", "FPR", "FNR", "PWC",
                                        "Precision", "F-measure"]
    rows = {}
    for line in lines[start + 2:]:
        parts = line.split()
        if len(parts) != 8:
            break
        rows[parts[0]] = [float(v) for v in parts[1:]]
    return rows


POST = ["--set", "postprocess.median_size=3", "--set", "postprocess.min_blob_area=6"]


def test_eval_two_sequences_with_opencv_json_and_masks(sequences, tmp_path):
    r = bgsub("eval", *sequences, "--compare", "raw,mog2,knn", "--json", "scores.json",
              "--save-masks", "masks", *POST, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "Traceback" not in r.stderr
    data = json.loads((tmp_path / "scores.json").read_text())
    assert [s["name"] for s in data["sequences"]] == ["alpha", "beta"]
    assert data["config"]["postprocess"]["median_size"] == 3
    assert list(data["methods"]) == ["bgsub", "raw", "mog2", "knn"]

    def configured():
        masker = MixtureMasker()
        post = Postprocessor(PostprocessConfig(median_size=3, min_blob_area=6))
        return lambda frame: post.apply(masker.apply(frame))

    makers = {
        "bgsub": configured,
        "raw": lambda: MixtureMasker().apply,
        "mog2": lambda: cv2.createBackgroundSubtractorMOG2().apply,
        "knn": lambda: cv2.createBackgroundSubtractorKNN().apply,
    }
    per_sequence = {name: [] for name in makers}
    for seq, entry in zip(sequences, data["sequences"]):
        assert entry["frames"] == FRAMES and entry["temporal_roi"] == [FIRST, FRAMES]
        assert entry["scored_frames"] == FRAMES - FIRST + 1
        assert entry["roi_bmp"] == (seq.name == "alpha")
        printed = table_rows(r.stdout, f"{seq.name} (")
        assert list(printed) == list(makers)
        for name, make in makers.items():
            counts, masks = independent_scores(seq, make)
            got = entry["results"][name]
            assert {k: got[k] for k in counts} == counts, (seq.name, name)
            metrics = plain_metrics(counts)
            for key, number in zip(METRIC_KEYS, printed[name]):
                assert got[key] == pytest.approx(metrics[key], abs=1e-12)
                assert number == pytest.approx(metrics[key], abs=5.1e-5)
            per_sequence[name].append(metrics)
            if name == "bgsub":  # the saved masks are the masks scored
                saved = sorted((tmp_path / "masks" / seq.name).iterdir())
                assert [p.name for p in saved] == [f"bin{i:06d}.png"
                                                   for i in range(1, FRAMES + 1)]
                for path, mask in zip(saved, masks):
                    assert np.array_equal(cv2.imread(str(path), cv2.IMREAD_UNCHANGED), mask)
    # post-processing changed something, or the test says nothing about it
    assert data["sequences"][0]["results"]["bgsub"] != data["sequences"][0]["results"]["raw"]
    means = table_rows(r.stdout, "mean over 2 sequences")
    for name in makers:
        expected = {k: np.mean([m[k] for m in per_sequence[name]]) for k in METRIC_KEYS}
        for i, key in enumerate(METRIC_KEYS):
            assert data["mean"][name][key] == pytest.approx(expected[key], abs=1e-12)
            assert means[name][i] == pytest.approx(expected[key], abs=5.1e-5)


def test_eval_one_sequence_prints_one_table_and_notes_a_missing_mog(sequences, tmp_path):
    r = bgsub("eval", sequences[1], "--compare", "mog", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "mean over" not in r.stdout
    rows = table_rows(r.stdout, "beta (")
    if hasattr(cv2, "bgsegm"):
        assert list(rows) == ["bgsub", "mog"] and r.stderr == ""
    else:
        assert list(rows) == ["bgsub"]
        assert r.stderr.strip().splitlines() == [
            ("bgsub: warning: mog skipped: cv2.bgsegm is missing (it comes with "
             "opencv-contrib-python)")]


def test_eval_reads_the_config_file(sequences, tmp_path):
    """./config.toml applies to eval as to the run command; --set goes on top."""
    (tmp_path / "config.toml").write_text("[postprocess]\nmin_blob_area = 9\n")
    r = bgsub("eval", sequences[0], "--json", "a.json", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert json.loads((tmp_path / "a.json").read_text())["config"]["postprocess"][
        "min_blob_area"] == 9
    r = bgsub("eval", sequences[0], "--json", "b.json", "--quiet",
              "--set", "postprocess.min_blob_area=2", cwd=tmp_path)
    assert json.loads((tmp_path / "b.json").read_text())["config"]["postprocess"][
        "min_blob_area"] == 2


def test_eval_is_the_command_whatever_the_folder_holds(sequences, tmp_path):
    """A folder named eval does not change what bgsub eval means; bgsub run eval reads it."""
    (tmp_path / "eval").mkdir()
    for i in range(3):
        cv2.imwrite(str(tmp_path / "eval" / f"{i}.png"), np.full((8, 8, 3), 90, np.uint8))
    r = bgsub("eval", sequences[1], "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert table_rows(r.stdout, "beta (")
    for source in (["run", "eval"], ["./eval"]):
        r = bgsub(*source, "--no-display", cwd=tmp_path)
        assert r.returncode == 0, r.stderr
        assert "3 frames processed" in r.stderr


def _break(seq, tmp_path, how):
    """A copy of *seq* broken in one way, named bad."""
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(seq, bad)
    how(bad)
    return bad


def _write(path, data):
    path.write_bytes(data) if isinstance(data, bytes) else path.write_text(data)


BROKEN = {
    "no input": (lambda d: __import__("shutil").rmtree(d / "input"),
                 "bad: no input/ folder (a CDnet sequence folder holds input/in000001.jpg"),
    "no groundtruth": (lambda d: __import__("shutil").rmtree(d / "groundtruth"),
                       "bad: no groundtruth/ folder"),
    "no temporalROI": (lambda d: (d / "temporalROI.txt").unlink(),
                       "temporalROI.txt: missing (expected two frame numbers 'first last'"),
    "garbled temporalROI": (lambda d: _write(d / "temporalROI.txt", "from 3 to 9\n"),
                            "temporalROI.txt: holds 'from 3 to 9', expected two frame numbers"),
    "temporalROI beyond": (lambda d: _write(d / "temporalROI.txt", "5 99\n"),
                           f"frames 5..99 are not within the {FRAMES} input frames"),
    "gap in frames": (lambda d: (d / "input" / "in000004.jpg").unlink(),
                      ("input/in000004.jpg is missing (frames must be numbered from "
                       "in000001.jpg without gaps")),
    "corrupt frame": (lambda d: _write(d / "input" / "in000020.jpg", b"not a jpeg"),
                      "in000020.jpg: not a readable image (every input frame is needed)"),
    "corrupt first frame": (lambda d: _write(d / "input" / "in000001.jpg", b""),
                            "in000001.jpg: not a readable image"),
    "corrupt groundtruth": (lambda d: _write(d / "groundtruth" / "gt000015.png", b"x"),
                            "gt000015.png: not a readable image (expected a grey PNG"),
    "missing groundtruth": (lambda d: (d / "groundtruth" / "gt000030.png").unlink(),
                            ("groundtruth/gt000030.png is missing (every frame in "
                             "temporalROI.txt")),
    "garbled ROI": (lambda d: _write(d / "ROI.bmp", b"BM nonsense"),
                    "ROI.bmp: not a readable image (expected a mask, non-zero = scored"),
    "ROI of another size": (lambda d: cv2.imwrite(str(d / "ROI.bmp"),
                                                  np.full((5, 5), 255, np.uint8)),
                            "ROI.bmp: size 5x5 differs from the frames' 80x56"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_a_broken_sequence_gets_one_line_and_exit_2(sequences, tmp_path, case):
    how, message = BROKEN[case]
    bad = _break(sequences[1], tmp_path, how)
    r = bgsub("eval", bad, "--quiet", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("bgsub: error: "), r.stderr
    assert message in lines[0], lines[0]
    assert "Traceback" not in r.stderr


@pytest.mark.parametrize("args,message", [
    (["missing"], "missing: no such folder (a CDnet sequence folder holds input/"),
    ([], "no sequence given: expected one or more CDnet sequence folders"),
    (["SEQ", "--compare", "mog2,gmg"], ("--compare: unknown method 'gmg' (expected a "
                                        "comma-separated list of raw, mog2, knn, mog)")),
    (["SEQ", "--json", "nodir/out.json"], "--json nodir/out.json: the folder nodir does not"),
    (["SEQ", "--json", "afolder"], "--json afolder: is a folder"),
    (["SEQ", "--save-masks", "afile"], "--save-masks afile: exists and is not a folder"),
    (["SEQ", "SEQ", "--save-masks", "m"], "--save-masks: two sequences are named 'beta'"),
    (["SEQ", "--save-masks", "SEQPARENT"], "would write into the sequence folder"),
    (["SEQ", "--set", "postprocess.median_size=4"], "postprocess.median_size must be 0 or 1"),
    (["SEQ", "--set", "model.k=0"], "model.k must be an integer in 1..8"),
    (["SEQ", "--config", "nothere.toml"], "config file not found: nothere.toml"),
])
def test_bad_arguments_get_one_line_and_exit_2(sequences, tmp_path, args, message):
    (tmp_path / "afolder").mkdir()
    (tmp_path / "afile").write_text("x")
    places = {"SEQ": str(sequences[1]), "SEQPARENT": str(sequences[1].parent)}
    args = [places.get(a, a) for a in args]
    r = bgsub("eval", *args, "--quiet", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2, r.stderr
    assert len(lines) == 1 and lines[0].startswith("bgsub: error: "), r.stderr
    assert message in lines[0], lines[0]
    assert not (tmp_path / "m").exists()  # nothing written before the checks pass
    assert not list(sequences[1].glob("bin*.png"))


def test_debug_shows_the_traceback(tmp_path):
    r = bgsub("eval", "missing", "--debug", cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" in r.stderr and "CdnetError" in r.stderr


def test_json_never_overwrites_a_file_of_the_data_set(sequences, tmp_path):
    import shutil

    seq = tmp_path / "seq"
    shutil.copytree(sequences[1], seq)
    truth = seq / "groundtruth" / "gt000010.png"
    before = truth.read_bytes()
    r = bgsub("eval", seq, "--json", truth, "--quiet", cwd=tmp_path)
    lines = r.stderr.strip().splitlines()
    assert r.returncode == 2 and len(lines) == 1, r.stderr
    assert "would write into the sequence folder" in lines[0]
    os.link(truth, tmp_path / "scores.json")  # the same file under a name outside
    r = bgsub("eval", seq, "--json", "scores.json", "--quiet", cwd=tmp_path)
    assert r.returncode == 2 and "under another name (a link)" in r.stderr, r.stderr
    assert truth.read_bytes() == before


def test_a_sequence_whose_name_holds_a_newline_is_one_heading_line(tmp_path):
    """A folder name is data: its newline cannot start a line of the table."""
    write_sequence(tmp_path / "seq\nbgsub 1.0 1.0", 5)
    r = bgsub("eval", "seq\nbgsub 1.0 1.0", "--quiet", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert lines[0].startswith("seq\\nbgsub 1.0 1.0 (seq\\nbgsub 1.0 1.0): 36 frames"), lines[0]
    assert not any(line.startswith("bgsub 1.0") for line in lines), r.stdout
