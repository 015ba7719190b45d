"""The real kfp.Client of kfp 1.8.22 (the v1 SDK) against a `coracle server` this suite
starts: the `/apis/v1beta1` endpoints it calls.

Run from the repository root with the python of a venv holding kfp==1.8.22 and pytest:

    CORACLE_BIN=target/release/coracle $KFP1_VENV/bin/python -m pytest tests/kfp_v1_client -q

The server gets a fresh data directory and a free port; CORACLE_PYTHON_ENVS_DIR (or
CORACLE_TEST_ENVS_DIR) is passed on so Python components reuse built environments.
"""

import functools
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
import urllib.request
import warnings

import pytest

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import kfp  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PIPELINES_V1 = os.path.join(REPO, "tests", "pipelines_v1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A `coracle server` process on a temporary data directory."""

    def __init__(self, binary: str):
        self.binary = os.path.abspath(binary)
        self.home = tempfile.mkdtemp(prefix="coracle-kfp-v1-client-")
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
                    f"{self.url}/apis/v1beta1/healthz", timeout=2
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

    def v2(self, path: str) -> dict:
        """GET /apis/v2beta1{path}: what the v2 API shows of the same store."""
        with urllib.request.urlopen(f"{self.url}/apis/v2beta1{path}", timeout=10) as answer:
            return json.load(answer)


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
    assert kfp.__version__ == "1.8.22", f"this suite is for kfp 1.8.22, not {kfp.__version__}"
    # Construction calls healthz (no namespace is set); a server that does not answer fails here.
    return kfp.Client(host=server.url)


@pytest.fixture
def v1_yaml():
    """The path of one of the team's compiled v1 pipelines (tests/pipelines_v1/NAME.yaml)."""

    def path(name: str) -> str:
        found = os.path.join(PIPELINES_V1, f"{name}.yaml")
        assert os.path.exists(found), found
        return found

    return path


@pytest.fixture
def tmp_yaml(tmp_path):
    """Compile a v1 pipeline function into an Argo workflow YAML file; return its path."""

    def compile_to(pipeline_func, name="pipeline.yaml"):
        path = str(tmp_path / name)
        kfp.compiler.Compiler().compile(pipeline_func, path)
        return path

    return compile_to


@pytest.fixture(scope="session")
def file_server():
    """A local HTTP server over tests/pipelines_v1, for pipelines created from a URL."""
    handler = functools.partial(
        http.server.SimpleHTTPRequestHandler, directory=PIPELINES_V1
    )
    handler.log_message = lambda *args: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
