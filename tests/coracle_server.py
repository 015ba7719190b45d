"""A `coracle server` for the Python suites (tests/kfp_client, tests/kfp_v1_client, tests/ui).

Each suite's conftest makes its session `server` fixture with `serve(prefix)`: the binary from
$CORACLE_BIN, a fresh data directory, the port the server picks (`--listen 127.0.0.1:0`, read
back from the line it prints), and CORACLE_PYTHON_ENVS_DIR (or CORACLE_TEST_ENVS_DIR) passed on
so Python components reuse built environments.
"""

import json
import os
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.request

LISTENING = "coracle server listening on http://"


class CoracleServer:
    """A `coracle server --listen 127.0.0.1:0` on a temporary data directory."""

    def __init__(self, binary: str, prefix: str):
        self.binary = os.path.abspath(binary)
        self.home = tempfile.mkdtemp(prefix=prefix)
        self.out_path = os.path.join(self.home, "server.out")
        self.log_path = os.path.join(self.home, "server.log")
        self.url = None
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
        with open(self.out_path, "wb") as out, open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [self.binary, "server", "--listen", "127.0.0.1:0"],
                env=self.env,
                stdout=out,
                stderr=log,
                start_new_session=True,
            )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"coracle server exited with {self.process.returncode}:\n{self.log_tail()}"
                )
            with open(self.out_path, errors="replace") as f:
                for line in f:
                    if line.startswith(LISTENING):
                        self.url = "http://" + line[len(LISTENING):].strip()
                        break
            if self.url:
                break
            time.sleep(0.05)
        if not self.url:
            raise RuntimeError(f"coracle server said nowhere where it listens:\n{self.log_tail()}")
        # Both API versions answer before any test starts.
        for api in ("v2beta1", "v1beta1"):
            self.get_json(f"/apis/{api}/healthz")

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

    def get_json(self, path: str) -> dict:
        """GET {url}{path}, parsed."""
        with urllib.request.urlopen(f"{self.url}{path}", timeout=10) as answer:
            return json.load(answer)

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


def serve(prefix: str):
    """Start a server for a test session, yield it, stop it and remove its data directory
    (its log printed when it did not end by SIGTERM)."""
    binary = os.environ.get("CORACLE_BIN")
    if not binary:
        raise RuntimeError("set CORACLE_BIN to the coracle binary to test")
    if not os.access(binary, os.X_OK):
        raise RuntimeError(f"CORACLE_BIN={binary} is not an executable file")
    s = CoracleServer(binary, prefix)
    s.start()
    yield s
    s.stop()
    if s.process.returncode not in (0, -signal.SIGTERM):
        print(f"coracle server ended with {s.process.returncode}:\n{s.log_tail()}")
    shutil.rmtree(s.home, ignore_errors=True)
