"""Progress: a bar on a terminal, log lines elsewhere, warnings above the bar."""

import io
import logging

from bgsub.cli.common import logging_to_stderr
from bgsub.io.progress import Progress


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_log_file_gets_a_line_now_and_then(caplog):
    p = Progress(100, interval=0.0, stream=io.StringIO())
    assert not p.live
    with caplog.at_level(logging.INFO, logger="bgsub"):
        p.update(1)  # the clock starts: nothing said yet
        assert caplog.messages == []
        p.update(50)
    assert len(caplog.messages) == 1
    assert caplog.messages[0].startswith("50/100 frames, ")
    assert " frames/s, ETA " in caplog.messages[0]


def test_no_rate_and_no_eta_before_the_second_frame():
    p = Progress(200, stream=io.StringIO())
    assert p.text(1) == "1/200 frames"
    p.update(1)
    assert p.text(1) == "1/200 frames"  # the first frame alone says nothing of the rate
    assert Progress(None, desc="cam").text(5) == "cam: 5 frames"


def test_a_terminal_gets_a_live_bar_that_starts_after_the_first_frame():
    term = Terminal()
    p = Progress(200, stream=term)
    assert p.live
    p.update(1)
    first = term.getvalue()
    assert "1/200" in first and "?" in first  # a rate and ETA not yet known
    p.update(2)
    p.close()
    assert "2/200" in term.getvalue()


def test_quiet_says_nothing(caplog):
    term = Terminal()
    p = Progress(10, quiet=True, stream=term, interval=0.0)
    with caplog.at_level(logging.INFO, logger="bgsub"):
        for i in range(1, 11):
            p.update(i)
    assert term.getvalue() == "" and caplog.messages == []


def test_log_lines_print_as_bgsub_lines_on_stderr(capsys):
    log = logging.getLogger("bgsub")
    with logging_to_stderr():
        log.info("plain")
        log.warning("careful")
        log.error("broken")
        log.debug("hidden")
    with logging_to_stderr(quiet=True):
        log.info("hidden too")
        log.warning("still shown")
    assert capsys.readouterr().err.splitlines() == [
        "bgsub: plain", "bgsub: warning: careful", "bgsub: error: broken",
        "bgsub: warning: still shown"]
    log.warning("no handler now")  # the CLI's handler is gone again
