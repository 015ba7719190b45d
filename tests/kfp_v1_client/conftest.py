"""The real kfp.Client of kfp 1.8.22 (the v1 SDK) against a `coracle server` this suite
starts: the `/apis/v1beta1` endpoints it calls.

Run from the repository root with the python of a venv holding kfp==1.8.22 and pytest:

    CORACLE_BIN=target/release/coracle $KFP1_VENV/bin/python -m pytest tests/kfp_v1_client -q

The server is started by tests/coracle_server.py: a fresh data directory, the port it picks,
CORACLE_PYTHON_ENVS_DIR (or CORACLE_TEST_ENVS_DIR) passed on so Python components reuse built
environments.
"""

import functools
import http.server
import os
import sys
import threading
import warnings

import pytest

warnings.filterwarnings("ignore", category=FutureWarning)
warnings.filterwarnings("ignore", category=DeprecationWarning)

import kfp  # noqa: E402

# tests/coracle_server.py starts the server every suite tests.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from coracle_server import serve  # noqa: E402

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
PIPELINES_V1 = os.path.join(REPO, "tests", "pipelines_v1")


@pytest.fixture(scope="session")
def server():
    yield from serve("coracle-kfp-v1-client-")

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
