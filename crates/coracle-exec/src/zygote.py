"""Coracle's Python worker ("zygote") for lightweight KFP components.

Started once per Python environment by coracle-exec. It imports kfp's executor
once, then forks one child per task, so a task costs a fork instead of an
interpreter start plus imports.

Protocol (the socket is fd 3, a Unix stream socket to coracle):
  coracle -> worker: an 8-byte header b"CZQ1" + big-endian u32 payload length,
      carrying two file descriptors (the task's stdout and stderr write ends)
      as SCM_RIGHTS, then the JSON payload:
      {"id": int, "cwd": str, "env": [[k, v], ...], "argv": [str, ...],
       "source": str, "unbuffered": bool}
  worker -> coracle: one JSON object per line:
      {"ready": pid} once imports are done, or {"fatal": message};
      {"started": id, "pid": pid} right after fork;
      {"failed": id, "error": message} when a task could not be started;
      {"exited": id, "code": n} or {"exited": id, "signal": n} after waitpid.

Every child is its own process group leader and gets PR_SET_PDEATHSIG(SIGKILL);
the worker itself is started with PR_SET_PDEATHSIG(SIGKILL) by coracle. When the
socket closes or SIGTERM arrives, the worker kills its children's process
groups and exits.

Written to stay compatible with Python 3.7 and later.
"""

import os
import sys

# The directory holding this script is not a module directory of the task.
if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
    del sys.path[0]

import atexit
import ctypes
import json
import runpy
import selectors
import shutil
import signal
import socket
import struct
import tempfile
import threading
import traceback

PR_SET_PDEATHSIG = 1
EXECUTOR_MODULE = "kfp.dsl.executor_main"
HEADER = struct.Struct(">4sI")
MAGIC = b"CZQ1"

_libc = ctypes.CDLL(None, use_errno=True)


def send(sock, message):
    data = (json.dumps(message) + "\n").encode("utf-8")
    sock.sendall(data)


def recv_exact(sock, n):
    chunks = []
    while n > 0:
        chunk = sock.recv(min(n, 1 << 20))
        if not chunk:
            raise EOFError
        chunks.append(chunk)
        n -= len(chunk)
    return b"".join(chunks)


def recv_request(sock):
    """Reads one request; returns (request, [fds]) or raises EOFError."""
    fd_size = struct.calcsize("i")
    data, ancdata, _flags, _addr = sock.recvmsg(HEADER.size, socket.CMSG_LEN(2 * fd_size))
    if not data:
        raise EOFError
    fds = []
    for level, kind, payload in ancdata:
        if level == socket.SOL_SOCKET and kind == socket.SCM_RIGHTS:
            usable = len(payload) - (len(payload) % fd_size)
            fds.extend(struct.unpack("%di" % (usable // fd_size), payload[:usable]))
    if len(data) < HEADER.size:
        data += recv_exact(sock, HEADER.size - len(data))
    magic, length = HEADER.unpack(data)
    if magic != MAGIC:
        for fd in fds:
            os.close(fd)
        raise ValueError("bad request header %r" % (data,))
    request = json.loads(recv_exact(sock, length).decode("utf-8"))
    return request, fds


def exit_code_of(exc):
    code = exc.code
    if code is None:
        return 0
    if isinstance(code, int):
        return code & 0xFF
    try:
        print(code, file=sys.stderr)
    except Exception:
        pass
    return 1


def run_child(request, out_fd, err_fd, zygote_pid, module_path, close_fds):
    """Runs in the forked child; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        _libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != zygote_pid:
            os._exit(137)
        signal.set_wakeup_fd(-1)
        for signum in (signal.SIGCHLD, signal.SIGTERM, signal.SIGHUP):
            signal.signal(signum, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.default_int_handler)
        for fd in close_fds:
            try:
                os.close(fd)
            except OSError:
                pass
        null_fd = os.open(os.devnull, os.O_RDONLY)
        os.dup2(null_fd, 0)
        os.dup2(out_fd, 1)
        os.dup2(err_fd, 2)
        for fd in (null_fd, out_fd, err_fd):
            if fd > 2:
                os.close(fd)
        if request.get("unbuffered"):
            sys.stdout.reconfigure(write_through=True)
            sys.stderr.reconfigure(write_through=True)
        else:
            sys.stdout.reconfigure(line_buffering=True)
        cwd = request["cwd"]
        os.chdir(cwd)
        os.environ.clear()
        for key, value in request["env"]:
            os.environ[key] = value
        tempfile.tempdir = None
        # `python3 -m module` puts the working directory first on sys.path.
        sys.path.insert(0, cwd)
        sys.argv = [EXECUTOR_MODULE, "--component_module_path", module_path] + list(request["argv"])
        # The zygote imported the executor module ahead of time; runpy executes its code
        # afresh as __main__ and would warn that it is already imported.
        sys.modules.pop(EXECUTOR_MODULE, None)
        try:
            runpy.run_module(EXECUTOR_MODULE, run_name="__main__", alter_sys=True)
            code = 0
        except SystemExit as exc:
            code = exit_code_of(exc)
        except BaseException:
            traceback.print_exc()
            code = 1
        # What interpreter shutdown would do: wait for threads, run atexit.
        try:
            shutdown_threads = getattr(threading, "_shutdown", None)
            if shutdown_threads is not None:
                shutdown_threads()
            run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
            if run_exitfuncs is not None:
                run_exitfuncs()
        except SystemExit as exc:
            code = exit_code_of(exc)
        except BaseException:
            traceback.print_exc()
    except BaseException:
        try:
            traceback.print_exc()
        except BaseException:
            pass
        code = 1
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:
                pass
        os._exit(code)


class Worker:
    def __init__(self, sock):
        self.sock = sock
        self.pid = os.getpid()
        self.children = {}  # pid -> (task id, temp dir)
        self.stopping = False
        self.wake_r, self.wake_w = os.pipe()
        os.set_blocking(self.wake_r, False)
        os.set_blocking(self.wake_w, False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        signal.signal(signal.SIGTERM, self.on_term)
        signal.signal(signal.SIGHUP, self.on_term)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.set_wakeup_fd(self.wake_w)
        self.selector = selectors.DefaultSelector()
        self.selector.register(self.sock, selectors.EVENT_READ, "sock")
        self.selector.register(self.wake_r, selectors.EVENT_READ, "wake")

    def on_term(self, *_):
        self.stopping = True

    def close_fds_for_child(self):
        return [self.sock.fileno(), self.wake_r, self.wake_w, self.selector.fileno()]

    def start(self, request, fds):
        task_id = request.get("id")
        if len(fds) != 2:
            for fd in fds:
                os.close(fd)
            send(self.sock, {"failed": task_id, "error": "expected 2 file descriptors, got %d" % len(fds)})
            return
        out_fd, err_fd = fds
        temp_dir = None
        try:
            tmp_root = None
            for key, value in request["env"]:
                if key == "TMPDIR" and value:
                    tmp_root = value
            temp_dir = tempfile.mkdtemp(prefix="coracle-kfp-", dir=tmp_root if tmp_root and os.path.isdir(tmp_root) else None)
            module_path = os.path.join(temp_dir, "ephemeral_component.py")
            with open(module_path, "w", encoding="utf-8") as f:
                f.write(request["source"])
            sys.stdout.flush()
            sys.stderr.flush()
            pid = os.fork()
        except BaseException as exc:
            os.close(out_fd)
            os.close(err_fd)
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)
            send(self.sock, {"failed": task_id, "error": "%s: %s" % (type(exc).__name__, exc)})
            return
        if pid == 0:
            run_child(request, out_fd, err_fd, self.pid, module_path, self.close_fds_for_child())
        os.close(out_fd)
        os.close(err_fd)
        try:
            os.setpgid(pid, pid)
        except OSError:
            pass
        self.children[pid] = (task_id, temp_dir)
        send(self.sock, {"started": task_id, "pid": pid})

    def reap(self):
        while self.children:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            entry = self.children.pop(pid, None)
            if entry is None:
                continue
            task_id, temp_dir = entry
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)
            if os.WIFSIGNALED(status):
                message = {"exited": task_id, "signal": os.WTERMSIG(status)}
            else:
                message = {"exited": task_id, "code": os.WEXITSTATUS(status)}
            send(self.sock, message)

    def kill_children(self):
        for pid in list(self.children):
            try:
                os.killpg(pid, signal.SIGKILL)
            except OSError:
                pass
        for pid, (_task_id, temp_dir) in list(self.children.items()):
            try:
                os.waitpid(pid, 0)
            except OSError:
                pass
            if temp_dir:
                shutil.rmtree(temp_dir, ignore_errors=True)
        self.children.clear()

    def serve(self):
        try:
            while not self.stopping:
                for key, _events in self.selector.select():
                    if key.data == "wake":
                        try:
                            while os.read(self.wake_r, 512):
                                pass
                        except (BlockingIOError, InterruptedError):
                            pass
                        self.reap()
                    elif key.data == "sock":
                        request, fds = recv_request(self.sock)
                        self.start(request, fds)
                self.reap()
        except (EOFError, ConnectionError, BrokenPipeError):
            pass
        finally:
            self.kill_children()


def warm_up():
    """Does once what every task would otherwise do again after fork: the lazy imports and
    regular expressions of argparse (the executor parses its arguments with it)."""
    try:
        import argparse
        import gettext  # noqa: F401
        import locale  # noqa: F401
        import shutil as _shutil  # noqa: F401

        parser = argparse.ArgumentParser(description="warm-up")
        parser.add_argument("--component_module_path", type=str, help="path")
        parser.add_argument("--function_to_execute", type=str, required=True, help="name")
        parser.add_argument("--executor_input", type=str, help="json")
        parser.parse_known_args(["--function_to_execute", "f", "--executor_input", "{}"])
        json.dumps(json.loads('{"a": [1, 2.5, "x", null, true]}'), indent=4)
    except Exception:
        pass


def main():
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM, fileno=3)
    sock.setblocking(True)
    os.set_inheritable(sock.fileno(), False)
    try:
        import kfp  # noqa: F401
        from kfp import dsl  # noqa: F401
        import kfp.dsl.executor  # noqa: F401
        import kfp.dsl.executor_main  # noqa: F401
        import logging  # noqa: F401
        import typing  # noqa: F401
        import importlib.util  # noqa: F401
    except BaseException:
        send(sock, {"fatal": "cannot import %s: %s" % (EXECUTOR_MODULE, traceback.format_exc())})
        sys.exit(1)
    warm_up()
    if threading.active_count() != 1:
        send(sock, {"fatal": "importing kfp started threads; forking is not safe"})
        sys.exit(1)
    worker = Worker(sock)
    try:
        import gc

        gc.collect()
        if hasattr(gc, "freeze"):
            gc.freeze()
    except Exception:
        pass
    send(sock, {"ready": worker.pid, "python": "%d.%d.%d" % sys.version_info[:3]})
    worker.serve()


if __name__ == "__main__":
    main()
