"""The real kfp.Client (kfp 2.14.6) against a `coracle server` this suite starts.

Run from the repository root:

    CORACLE_BIN=target/release/coracle $VENV/bin/python -m pytest tests/kfp_client -q

The server is started by tests/coracle_server.py: a fresh data directory, the port it picks,
CORACLE_PYTHON_ENVS_DIR (or CORACLE_TEST_ENVS_DIR) passed on so Python components reuse built
environments.
"""

import os
import sys
import warnings

import pytest

warnings.filterwarnings("ignore", category=FutureWarning, module="kfp")

import kfp  # noqa: E402

# tests/coracle_server.py starts the server every suite tests.
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from coracle_server import serve  # noqa: E402


@pytest.fixture(scope="session")
def server():
    yield from serve("coracle-kfp-client-")

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
