"""A server that forks ``python -m bgsub`` commands for the tests (see kit.bgsub).

Run as ``python tests/forkserver.py SOCKET``.  It imports what every command
imports (tests/preload.py), says ``ready`` on stdout, and then, for each
connection on the Unix socket *SOCKET*, reads a request (the arguments, the
working folder and the environment as JSON, with the command's stdout and
stderr as two descriptors), forks, and in the child becomes the command:
those descriptors as fd 1 and 2, /dev/null as fd 0, the signal handlers a new
Python process has, ``sys.argv`` and ``__main__`` as ``python -m bgsub`` sets
them.  It answers the child's pid at once and its exit status (that of
:func:`os.waitstatus_to_exitcode`) when it ends.  One command at a time: one
server serves one test process.  It leaves when its stdin closes, so it never
outlives the tests.
"""

import json
import os
import selectors
import signal
import socket
import sys

import preload  # noqa: F401  (the libraries, imported once)


def _become_command(request: dict, out: int, err: int) -> None:
    """In the forked child: run the command and leave with its status."""
    code = 1
    try:
        os.chdir(request["cwd"])
        os.environ.clear()
        os.environ.update(request["env"])
        null = os.open(os.devnull, os.O_RDONLY)
        for fd, target in [(null, 0), (out, 1), (err, 2)]:
            os.dup2(fd, target)
            os.close(fd)
        for signum in (signal.SIGTERM, signal.SIGCHLD, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGPIPE, signal.SIG_IGN)  # as Python starts
        sys.argv = ["bgsub", *request["argv"]]
        import runpy

        runpy.run_module("bgsub", run_name="__main__", alter_sys=True)
        code = 0
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            print(exc.code, file=sys.stderr)
    except BaseException:
        import traceback

        traceback.print_exc()
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except Exception:
                pass
        os._exit(code)


def _serve(connection: socket.socket, listener: socket.socket) -> None:
    """One command: its request, the fork, the pid, the status."""
    data, fds, _, _ = socket.recv_fds(connection, 1 << 20, 2)
    while not data.endswith(b"\n"):
        more = connection.recv(1 << 20)
        if not more:
            break
        data += more
    request = json.loads(data)
    out, err = fds
    pid = os.fork()
    if pid == 0:
        listener.close()
        connection.close()
        _become_command(request, out, err)
    os.close(out)
    os.close(err)
    connection.sendall(f"{pid}\n".encode())
    _, status = os.waitpid(pid, 0)
    connection.sendall(f"{os.waitstatus_to_exitcode(status)}\n".encode())


def main(path: str) -> None:
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    listener.bind(path)
    listener.listen()
    print("ready", flush=True)
    events = selectors.DefaultSelector()
    events.register(listener, selectors.EVENT_READ)
    events.register(sys.stdin, selectors.EVENT_READ)
    while True:
        for key, _ in events.select():
            if key.fileobj is sys.stdin:
                if not os.read(sys.stdin.fileno(), 4096):
                    return  # the tests are over
                continue
            connection, _ = listener.accept()
            with connection:
                try:
                    _serve(connection, listener)
                except (OSError, ValueError):
                    pass  # the test gave up on it (a timeout): the next one


if __name__ == "__main__":
    main(sys.argv[1])
