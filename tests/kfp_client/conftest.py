"""The real kfp.Client (kfp 2.14.6) against a `coracle server` this suite starts.

Run from the repository root:

    CORACLE_BIN=target/release/coracle $VENV/bin/python -m pytest tests/kfp_client -q

The server gets a fresh data directory and a free port; CORACLE_PYTHON_ENVS_DIR (or
CORACLE_TEST_ENVS_DIR) is passed on so Python components reuse built environments.
"""

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import warnings

import pytest

warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")

import kfp  # noqa: E402

def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `coracle server` process on a temporary data directory."""

    def __init__(self, binary: str):
        self.binary = os.path.abspath(binary)
        self.home = tempfile.mkdtemp(prefix="coracle-kfp-client-")
        self.port = _free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = os.path.join(self.home, "server.log")
        self.env = dict(os.environ)
        self.env["CORACLE_HOME"] = self.home
        self.env.pop("CORACLE_OUTPUT", None)
        envs = os.environ.get("CORACLE_PYTHON_ENVS_DIR") or os.environ.get(
            "CORACLE_TEST_ENVS_DIR"
        )
        if envs:
            self.env["CORACLE_PYTHON_ENVS_DIR"] = envs
        self.process = None

    def start(self):
        log = open(self.log_path, "ab")
        self.process = subprocess.Popen(
            [self.binary, "server", "--listen", f"127.0.0.1:{self.port}"],
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        log.close()
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"coracle server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            try:
                with urllib.request.urlopen(
                    f"{self.url}/apis/v2beta1/healthz", timeout=2
                ) as answer:
                    json.load(answer)
                    return
            except OSError:
                time.sleep(0.1)
        raise RuntimeError(f"coracle server did not answer within 60 s:\n{self.log_tail()}")

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()

    def log_tail(self, lines: int = 40) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return "".join(f.readlines()[-lines:])
        except OSError:
            return "(no log)"

    def cli(self, *args: str) -> subprocess.CompletedProcess:
        """`coracle ARGS` on the server's data directory."""
        return subprocess.run(
            [self.binary, *args], env=self.env, capture_output=True, text=True, timeout=120
        )

    def recorded_run(self, run_id: str) -> dict:
        """What the store recorded for a run (`coracle runs get --output json`)."""
        out = self.cli("runs", "get", run_id, "--output", "json")
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)


@pytest.fixture(scope="session")
def server():
    binary = os.environ.get("CORACLE_BIN")
    if not binary:
        raise RuntimeError("set CORACLE_BIN to the coracle binary to test")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"CORACLE_BIN={binary} is not an executable file")
    s = Server(binary)
    s.start()
    yield s
    s.stop()
    crashed = s.process.returncode not in (0, -signal.SIGTERM)
    if crashed:
        print(f"coracle server ended with {s.process.returncode}:\n{s.log_tail()}")
    shutil.rmtree(s.home, ignore_errors=True)


@pytest.fixture(scope="session")
def client(server):
    # Construction calls healthz; a server that does not answer it fails here.
    return kfp.Client(host=server.url)


@pytest.fixture
def tmp_yaml(tmp_path):
    """Compile a pipeline function into a YAML file and return its path."""

    def compile_to(pipeline_func, name="pipeline.yaml"):
        path = str(tmp_path / name)
        kfp.compiler.Compiler().compile(pipeline_func=pipeline_func, package_path=path)
        return path

    return compile_to
