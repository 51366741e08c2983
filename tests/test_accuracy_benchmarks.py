"""The accuracy page's benchmark tables: the mechanisms, leave one out, events against DVR-Scan.

The runs themselves take minutes of CPU and the lead's machine; these tests
check what the scripts do with the scores: which settings leave-one-out
chooses, and that the page holds each table in the shape its script writes.
"""

from __future__ import annotations

import re

import pytest

from kit import ROOT

PAGE = ROOT / "docs" / "accuracy.md"
NAMES = ["highway", "pedestrians", "office", "busStation", "fall"]


@pytest.fixture
def benchmarks(monkeypatch):
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))


def page_table(name: str) -> list[str]:
    text = PAGE.read_text(encoding="utf-8")
    found = re.search(rf"<!-- table:{name} -->\n(.*?)\n<!-- /table:{name} -->", text, re.DOTALL)
    assert found, f"docs/accuracy.md has no {name} table"
    return found.group(1).splitlines()


def point(overrides, **f):
    return {"overrides": overrides, "f": {n: f.get(n, 0.9) for n in NAMES}}


def test_leave_one_out_chooses_on_the_others_and_breaks_ties_on_the_worst(benchmarks):
    import leave_one_out

    fits_fall = point(["model.flicker_threshold=6"], fall=0.99, office=0.88)
    broad = point(["model.flicker_threshold=2"], fall=0.80)
    # with fall: fits_fall has the best mean; without it, broad does
    assert leave_one_out.choose([fits_fall, broad], NAMES) is fits_fall
    others = [n for n in NAMES if n != "fall"]
    assert leave_one_out.choose([fits_fall, broad], others) is broad
    # the same mean to four decimals: the one whose worst sequence is better
    even = point(["model.flicker_threshold=0"])
    uneven = point(["model.flicker_threshold=4"], highway=0.95, office=0.85)
    assert leave_one_out.choose([uneven, even], others) is even
    assert leave_one_out.choose([even, uneven], others) is even


def test_leave_one_out_reports_the_drop_against_the_defaults(benchmarks):
    import leave_one_out

    scores = {"defaults": {n: 0.9 for n in NAMES},
              "points": [point(["model.flicker_threshold=6"], fall=0.99, office=0.88),
                         point(["model.flicker_threshold=2"], fall=0.80)]}
    rows = {line.split(" | ")[0].strip("| "): line for line in
            leave_one_out.table(scores).splitlines()[2:]}
    assert "flicker_threshold 2 | 0.8000 | 0.9000 | **0.1000** |" in rows["fall"]
    assert "flicker_threshold 6 | 0.8800 | 0.9000 | **0.0200** |" in rows["office"]


def test_the_page_holds_each_table_in_its_scripts_shape(benchmarks):
    import bench_scan
    import leave_one_out
    import mechanism_table

    mechanisms = page_table("mechanisms")
    assert [line.split(" | ")[0].strip("| ") for line in mechanisms[2:]] == [
        label for label, _ in mechanism_table.MECHANISMS]
    # the defaults' row and the next, written again from their numbers
    rows = []
    for line, (label, overrides) in zip(mechanisms[2:4], mechanism_table.MECHANISMS):
        cells = [c.strip("* ") for c in line.strip("|").split("|")]
        rows.append({"label": label, "overrides": overrides, "mean_f": float(cells[2]),
                     "f": dict(zip(NAMES, map(float, cells[3:])))})
    assert mechanism_table.table(rows).splitlines() == mechanisms[:4]

    loo = page_table("leave-one-out")
    assert loo[0] == leave_one_out.table(
        {"defaults": {n: 0.9 for n in NAMES}, "points": [point([])]}).splitlines()[0]
    assert [line.split(" | ")[0].strip("| ") for line in loo[3:]] == NAMES

    events = page_table("events")
    assert [line.split(" | ")[0].strip("| ") for line in events[2:]] == list(bench_scan.SEQUENCES)
    row = events[-1]
    cells = [c.strip("* ") for c in row.strip("|").split("|")]

    def prf(text):
        p, r, f = (float(v.strip("* ")) for v in text.split(" / "))
        return {"precision": p, "recall": r, "f": f}
    result = {"frames_scored": int(cells[1]), "with_motion": int(cells[2]),
              "dvr_scan": prf(cells[3]), "dvr_scan_defaults": {"f": float(cells[4])},
              "bgsub": prf(cells[5]), "bgsub_l1": {"f": float(cells[6])}}
    assert bench_scan.quality_row(cells[0].strip(), result) == row


def test_the_anchors_counts_become_rows_beside_bgsub(benchmarks, tmp_path):
    import json

    import accuracy_table

    from bgsub.eval.cdnet import Confusion

    counts = {"highway": (90, 10, 10, 890), "fall": (60, 40, 20, 880)}
    path = tmp_path / "anchors.json"
    path.write_text(json.dumps({"results": {"SuBSENSE": {
        name: dict(zip(("tp", "fp", "fn", "tn"), c)) for name, c in counts.items()}}}))
    bgsub_row = {key: 0.5 for key, _ in accuracy_table.METRICS}
    data = {"sequences": [{"name": name, "results": {"bgsub": dict(bgsub_row)}}
                          for name in counts], "mean": {"bgsub": dict(bgsub_row)}}
    accuracy_table.add_anchors(data, path)
    lines = accuracy_table.table(data).splitlines()
    f = {name: Confusion(*c).f_measure for name, c in counts.items()}
    assert f"| highway | BGSLibrary SuBSENSE |" in lines[3] and lines[3].endswith(
        f"| {f['highway']:.4f} |")
    assert lines[-1].startswith("| mean | BGSLibrary SuBSENSE |") and lines[-1].endswith(
        f"| {(f['highway'] + f['fall']) / 2:.4f} |")
