"""bgsub.scan.cluster and bgsub scan --workers/--scheduler on a LocalCluster of 2 processes."""

import csv
import dataclasses
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

pytest.importorskip("distributed", reason='the cluster scan needs Dask: pip install '
                    '"bgsub[dask]" (CI installs it)')

from distributed import Client, LocalCluster  # noqa: E402

import bgsub  # noqa: E402
import bgsub.cli.scan  # noqa: E402
from bgsub.cli import main  # noqa: E402
from bgsub.scan.cluster import (ClusterError, check_versions, iter_scan, plan_chunks,  # noqa: E402
                               scan_files, scan_task, Chunk)
from bgsub.scan.scanner import scan_file  # noqa: E402
from bgsub.eval.synthetic import EventSpec, write_events_video  # noqa: E402
from kit import bgsub as bgsub_cmd, config_with


NO_ROLLS = config_with(pre_roll=0, post_roll=0, min_event_length=1)
#: 300 frames at 30 fps in stretches of 100: the objects cross both ends of the middle one
CHUNKED = config_with(pre_roll=0, post_roll=0, min_event_length=1, chunk_minutes=100 / 30 / 60,
                      chunk_warmup=60)
CROSSING = EventSpec(frames=300, crossings=((85, 115), (190, 215), (250, 265)))


def same(a, b):
    """Two scan results alike but for the time they took."""
    return dataclasses.replace(a, scan_seconds=0) == dataclasses.replace(b, scan_seconds=0)


@pytest.fixture(scope="module")
def client():
    # port 0 and the dashboard's on port 0 too: every xdist worker can run a cluster of its own
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                      dashboard_address=":0", host="127.0.0.1", scheduler_port=0) as cluster, \
            Client(cluster, set_as_default=False) as c:
        yield c


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cluster")
    write_events_video(str(folder / "a.mp4"), EventSpec(frames=150, crossings=((20, 39),
                                                                               (100, 119))))
    write_events_video(str(folder / "b.mp4"), EventSpec(frames=90, crossings=()))
    write_events_video(str(folder / "crossing.mp4"), CROSSING)
    (folder / "broken.mp4").write_bytes(b"\x00\x00\x00\x20ftypisom" + os.urandom(4000))
    return folder


def test_files_scanned_on_the_cluster_give_what_a_local_scan_gives(client, videos):
    paths = [videos / "a.mp4", videos / "b.mp4", videos / "crossing.mp4"]
    results = scan_files(client, paths, NO_ROLLS)
    assert [r.path for r in results] == [str(p) for p in paths]
    for path, result in zip(paths, results):
        assert same(result, scan_file(path, NO_ROLLS))
    assert len(results[0].events) == 2 and not results[1].events


def test_a_file_cut_into_stretches_gives_the_events_of_one_pass(client, videos):
    path = videos / "crossing.mp4"
    chunks = plan_chunks(path, CHUNKED, 30.0, 300)
    assert [(c.start, c.end, c.warmup) for c in chunks] == [(0, 100, 0), (100, 200, 60),
                                                          (200, None, 60)]
    whole = scan_file(path, CHUNKED)
    (split,) = scan_files(client, [path], CHUNKED)
    assert len(whole.events) == len(split.events) == 3
    for joined, single in zip(split.events, whole.events):  # the first two cross an end
        for name in ("start_frame", "end_frame", "motion_start_frame", "motion_end_frame",
                     "peak_frame"):
            assert abs(getattr(joined, name) - getattr(single, name)) <= 1, name
        assert joined.number == single.number and joined.file == single.file
    assert (split.first_frame, split.last_frame, split.frames) == (0, 299, 300)


def test_a_corrupt_file_is_reported_once_and_a_path_no_worker_sees_per_file(client, videos,
                                                                              caplog):
    caplog.set_level("WARNING", logger="bgsub")
    paths = [videos / "broken.mp4", videos / "a.mp4", "/nowhere/cam9/0001.mp4"]
    with pytest.raises(ClusterError, match="2 of 3 files could not be scanned") as raised:
        scan_files(client, paths, NO_ROLLS)
    assert "broken.mp4" in str(raised.value) and "/nowhere/cam9/0001.mp4" in str(raised.value)
    broken = [r for r in caplog.records if "broken.mp4" in r.getMessage()]
    assert len(broken) == 1  # a task that returned its error: Dask did not run it again
    (kept,) = scan_files(client, paths, NO_ROLLS, errors="skip")
    assert kept.path == str(videos / "a.mp4")
    # a path the client believes in (its header read here) that no worker can open
    outcomes = list(iter_scan(client, ["/nowhere/cam9/0002.mp4"], CHUNKED,
                              probe=lambda path: (30.0, 300)))
    assert len(outcomes) == 1 and "No such file" in outcomes[0][1].error
    assert "stretch 1 of 3" in outcomes[0][1].error


def test_workers_of_another_bgsub_are_refused(client, videos, monkeypatch):
    monkeypatch.setattr(bgsub._version, "__version__", "0.0.0-other")
    with pytest.raises(ClusterError, match="another bgsub than this 0.0.0-other"):
        check_versions(client)
    # a worker that joins later refuses the task itself
    chunk = Chunk(str(videos / "a.mp4"), str(videos / "a.mp4"))
    refused = scan_task(chunk, NO_ROLLS, 1, "9.9.9")
    assert refused.result is None and "runs bgsub 0.0.0-other, the client 9.9.9" in refused.error


class LosingClient:
    """A client whose last worker dies while it is asked (Dask's ``run`` answers as
    :meth:`distributed.Client.run` does: the error raised, or returned with
    ``on_error="return"``)."""

    def __init__(self, answer, workers=("tcp://10.0.0.1:1", "tcp://10.0.0.2:1")):
        self.answer = answer
        self.workers = workers

    def scheduler_info(self):
        return {"workers": {w: {"host": w.split("//")[1].split(":")[0], "nthreads": 1}
                            for w in self.workers}}

    def run(self, function, on_error="raise"):
        from distributed.comm.core import CommClosedError

        lost = CommClosedError("Address removed.")
        if on_error == "raise":
            raise lost
        return {**{w: self.answer for w in self.workers[:-1]}, self.workers[-1]: lost}


def test_a_worker_lost_while_the_scan_starts_is_no_error():
    """A worker killed while the start-up asks the workers their version and cores: the
    scan goes on with the others (Dask replaces the lost one), no internal error."""
    from bgsub.scan.cluster import task_threads

    assert check_versions(LosingClient(bgsub.__version__)) == ["tcp://10.0.0.1:1",
                                                              "tcp://10.0.0.2:1"]
    with pytest.raises(ClusterError, match="another bgsub"):
        check_versions(LosingClient("0.0.0-other"))
    assert task_threads(LosingClient(8)) == {"10.0.0.1": 8, "10.0.0.2": 1}
    # two workers on one host, the second lost: the first tells the host's cores
    both = LosingClient(8, ("tcp://10.0.0.1:1", "tcp://10.0.0.1:2"))
    assert task_threads(both) == {"10.0.0.1": 4}


def test_a_worker_killed_in_the_middle_of_a_task_has_it_run_again_elsewhere(client, videos,
                                                                            tmp_path):
    from distributed.diagnostics.plugin import WorkerPlugin

    marker = str(tmp_path / "killed")

    class KillOnce(WorkerPlugin):  # defined here: pickled by value, for the workers
        name = "bgsub-test-kill-once"

        def transition(self, key, start, finish, **kwargs):
            if finish == "executing" and str(key).startswith("bgsub-scan"):
                try:
                    os.close(os.open(marker, os.O_CREAT | os.O_EXCL))
                except FileExistsError:
                    return
                threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGKILL)).start()

    pids = set(client.run(os.getpid).values())
    client.register_plugin(KillOnce())
    try:
        path = videos / "long.mp4"
        write_events_video(str(path), EventSpec(frames=900, crossings=((100, 130), (700, 760))))
        (result,) = scan_files(client, [path], NO_ROLLS)
    finally:
        client.unregister_worker_plugin(KillOnce.name)
    assert os.path.exists(marker)  # a worker was killed while it scanned
    client.wait_for_workers(2, timeout=60)
    assert set(client.run(os.getpid).values()) != pids  # ... and its nanny started another
    assert same(result, scan_file(path, NO_ROLLS))  # no event lost or twice


def test_scan_with_workers_writes_what_a_local_scan_writes(videos, tmp_path):
    folder = tmp_path / "cam"
    folder.mkdir()
    for name in ("a.mp4", "broken.mp4", "crossing.mp4"):
        (folder / name).write_bytes((videos / name).read_bytes())
    local = bgsub_cmd("scan", folder, "--output-dir", tmp_path / "local", cwd=tmp_path)
    cluster = bgsub_cmd("scan", folder, "--output-dir", tmp_path / "cluster", "--workers", 2,
                        "--set", "scan.chunk_minutes=0.04", cwd=tmp_path)
    assert local.returncode == cluster.returncode == 3, cluster.stderr
    assert cluster.stdout == local.stdout and "Traceback" not in cluster.stderr
    failed = [line for line in cluster.stderr.splitlines() if "listed as failed" in line]
    assert failed == [line for line in local.stderr.splitlines() if "listed as failed" in line]
    assert len(failed) == 1 and "broken.mp4" in failed[0]  # reported once
    for out in (tmp_path / "local").iterdir():
        other = tmp_path / "cluster" / out.name
        if out.suffix in (".jpg", ".mp4", ".csv"):  # thumbnails, clips, table: the same bytes
            assert other.read_bytes() == out.read_bytes(), out.name
    # started again: every file is done, on a cluster as in one process
    again = bgsub_cmd("scan", folder, "--output-dir", tmp_path / "cluster", "--workers", 2,
                      cwd=tmp_path)
    assert "2 of 3 files already scanned" in again.stderr, again.stderr


def test_a_scheduler_that_does_not_answer_is_one_error_within_the_timeout(videos, tmp_path):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    began = time.monotonic()
    r = bgsub_cmd("scan", videos / "a.mp4", "--output-dir", tmp_path, "--scheduler",
                  f"tcp://127.0.0.1:{port}", "--set", "scan.connect_timeout=2", cwd=tmp_path)
    assert r.returncode == 2 and time.monotonic() - began < 20
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("bgsub: error: no Dask scheduler answered at tcp://127.0.0.1:")
    assert "within 2 s" in line and not r.stdout
    assert not (Path(tmp_path) / "a.scan.json").exists()


def test_cluster_flags_that_make_no_sense_are_usage_errors(videos, tmp_path):
    r = bgsub_cmd("scan", videos / "a.mp4", "--workers", 2, "--continuous", cwd=tmp_path)
    assert r.returncode == 2 and "--continuous" in r.stderr
    r = bgsub_cmd("scan", videos / "a.mp4", "--workers", 2, "--scheduler", "tcp://x:1",
                  cwd=tmp_path)
    assert r.returncode == 2 and "not allowed with" in r.stderr


def test_a_task_of_a_stopped_run_ends_without_a_result(client, videos):
    from distributed import Event

    chunk = Chunk(str(videos / "crossing.mp4"), str(videos / "crossing.mp4"))
    Event("bgsub-stop-test-stopped", client=client).set()  # what the client sets on Ctrl-C
    stopped = client.submit(scan_task, chunk, NO_ROLLS, 1, bgsub.__version__,
                            run="test-stopped", pure=False).result(timeout=120)
    assert stopped.result is None and stopped.error == "stopped"  # not half a file's events
    going = client.submit(scan_task, chunk, NO_ROLLS, 1, bgsub.__version__,
                          run="test-going", pure=False).result(timeout=120)
    assert going.error is None and same(going.result, scan_file(chunk.path, NO_ROLLS))


def test_progress_shows_the_frames_and_files_done_across_the_workers(videos, tmp_path,
                                                                     monkeypatch):
    bars = []

    class Bar:  # what the run's bar is told
        def __init__(self, total=None, **kwargs):
            self.total, self.values, self.notes = total, [], []
            bars.append(self)

        def update(self, done):
            self.values.append(done)

        def note(self, text):
            self.notes.append(text)

        def close(self):
            pass

    monkeypatch.setattr(bgsub.cli.scan, "Progress", Bar)
    long = tmp_path / "long.mp4"
    write_events_video(str(long), EventSpec(frames=1800, crossings=((100, 129),)))
    # the long file in 3 stretches of 600 frames: 3 tasks, 2 at a time
    assert main(["scan", str(long), str(videos / "a.mp4"), "--workers", "2", "--scan-only",
                 "--quiet", "--output-dir", str(tmp_path / "out"),
                 "--set", "scan.chunk_minutes=0.3333334", "--set", "scan.chunk_warmup=60"]) == 0
    (bar,) = bars
    assert bar.total == 1950 and bar.values[-1] == 1950
    assert bar.values == sorted(bar.values)  # never back, warm-ups not counted
    # the files' ends alone give 0, 150, 1800, 1950: the others came from the tasks under way
    assert set(bar.values) - {0, 150, 1800, 1950}, bar.values
    rows = list(csv.DictReader((tmp_path / "out" / "events.csv").open()))
    assert len(rows) == 2 and bar.notes[-1] == "2/2 files, 2 events"  # and files done


def session_processes(session):
    """The processes of a session still there (the bgsub command's, its workers')."""
    import psutil  # a dependency of Dask's

    left = []
    for pid in psutil.pids():
        try:
            if os.getsid(pid) == session:
                left.append(pid)
        except OSError:  # gone meanwhile
            pass
    return left


@pytest.mark.parametrize("signum,to_group", [(signal.SIGINT, True), (signal.SIGTERM, False)],
                         ids=["ctrl-c-to-the-group", "sigterm-to-bgsub"])
def test_a_stopped_cluster_scan_keeps_the_files_done_and_a_new_run_carries_on(
        signum, to_group, tmp_path):
    folder = tmp_path / "night"
    folder.mkdir()
    # a short first file: once it is done, the signal comes while the second is half
    # scanned and four more wait (files all alike could all be done before it lands)
    write_events_video(str(folder / "00.mp4"), EventSpec(frames=300, crossings=((30, 59),
                                                                                (200, 229))))
    write_events_video(str(folder / "01.mp4"), EventSpec(frames=600, crossings=((100, 129),
                                                                                (400, 429))))
    for i in range(2, 6):
        shutil.copy(folder / "01.mp4", folder / f"{i:02d}.mp4")
    out = tmp_path / "out"
    command = [sys.executable, "-m", "bgsub", "scan", str(folder), "--output-dir", str(out),
               "--workers", "2"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, start_new_session=True)
    try:
        deadline = time.monotonic() + 300  # a loaded machine: seconds become minutes
        while not list(out.glob("*.scan.json")) and process.poll() is None \
                and time.monotonic() < deadline:
            time.sleep(0.05)
        if to_group:  # a terminal's Ctrl-C: every process of the group, workers too
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)
        stdout, stderr = process.communicate(timeout=300)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert process.returncode == 128 + signum, stderr
    assert f"stopped by {signal.Signals(signum).name}" in stderr
    # bgsub's lines only: no worker's traceback, no Dask warning about the tasks cancelled
    assert all(line.startswith("bgsub: ") for line in stderr.splitlines()), stderr
    deadline = time.monotonic() + 60
    while session_processes(process.pid) and time.monotonic() < deadline:
        time.sleep(0.2)
    assert session_processes(process.pid) == []  # the workers are gone with the client
    # the files done are complete: records, clips, thumbnails, the table; nothing half-written
    done = sorted(p.name.removesuffix(".scan.json") for p in out.glob("*.scan.json"))
    assert 1 <= len(done) < 6, done
    rows = list(csv.DictReader((out / "events.csv").open()))
    assert sorted({Path(row["file"]).stem for row in rows}) == done and len(rows) == 2 * len(done)
    for row in rows:
        assert (out / row["clip"]).stat().st_size > 0 and (out / row["thumbnail"]).exists()
    assert len(stdout.splitlines()) == len(rows)
    assert [f["status"] for f in json.loads((out / "events.json").read_text())["files"]] == \
        ["scanned"] * len(done)
    assert not list(out.glob(".*"))
    stamps = {p: p.stat().st_mtime_ns for p in out.glob("*.scan.json")}
    # started again: the files done are skipped, the others scanned
    again = bgsub_cmd("scan", folder, "--output-dir", out, "--workers", 2, cwd=tmp_path,
                      timeout=300)
    assert again.returncode == 0, again.stderr
    assert f"{len(done)} of 6 files already scanned" in again.stderr
    assert {p: p.stat().st_mtime_ns for p in stamps} == stamps
    rows = list(csv.DictReader((out / "events.csv").open()))
    assert len(rows) == 12 and len(list(out.glob("*.scan.json"))) == 6


def test_a_repeatedly_killed_worker_leaves_only_bgsub_lines_on_stderr(tmp_path):
    """End to end: ``bgsub scan --workers 2`` whose workers are killed while they run the task.

    Dask gives up on a task after its ``allowed-failures`` (3) + 1 workers died running it,
    and its scheduler (in the bgsub process) logs ``distributed.scheduler - ERROR - ...``:
    that must come out as a ``bgsub:`` line, as must the file's failure.
    """
    import psutil  # a dependency of Dask's

    write_events_video(str(tmp_path / "long.mp4"), EventSpec(frames=3000,
                                                             crossings=((100, 130),)))
    process = subprocess.Popen(
        [sys.executable, "-m", "bgsub", "scan", "long.mp4", "--output-dir", "out",
         "--workers", "2"], cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
        text=True, start_new_session=True)
    kills, registered = 0, {}
    try:
        deadline = time.monotonic() + 240  # a loaded machine: seconds become minutes
        while process.poll() is None and time.monotonic() < deadline:
            for child in psutil.Process(process.pid).children(recursive=True):
                try:
                    if "spawn_main" not in " ".join(child.cmdline()):
                        continue  # not a worker process (the resource tracker)
                    if not [c for c in child.net_connections("tcp")
                            if c.status == psutil.CONN_ESTABLISHED]:
                        continue  # not yet talking to the scheduler: no task to lose
                    since = registered.setdefault(child.pid, time.monotonic())
                    if time.monotonic() - since > 1.0:  # it has been given the task
                        child.kill()
                        kills += 1
                except psutil.Error:  # gone meanwhile
                    pass
            time.sleep(0.2)
        _, stderr = process.communicate(timeout=120)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
    assert kills >= 4, (kills, stderr)
    assert process.returncode == 3, stderr  # the file failed, by name
    assert "long.mp4" in stderr and "listed as failed" in stderr, stderr
    assert "died while trying to run it" in stderr, stderr  # the scheduler's own news ...
    assert all(line.startswith("bgsub: ") for line in stderr.splitlines()), stderr  # ... ours
