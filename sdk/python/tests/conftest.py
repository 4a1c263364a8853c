"""Fixtures: the real `rendertrust serve --dev` binary (bin/rendertrust, from
`make build`) on a loopback port with a temporary data dir, and accounts
with credits on it. Nothing is mocked; tests wait for events with a
deadline, never for a fixed delay."""

import os
import pathlib
import re
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Callable, Iterator, Optional, TypeVar

import pytest

REPO = pathlib.Path(__file__).resolve().parents[3]
SRC = REPO / "sdk" / "python" / "src"
sys.path.insert(0, str(SRC))
sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))

from rendertrust import NoHealthyNodesError, RenderTrustClient  # noqa: E402

BINARY = REPO / "bin" / "rendertrust"
START_SECONDS_MAX = 120.0
"""How long the server may take to start on a busy machine."""
EVENT_SECONDS_MAX = 120.0
"""How long a test waits for an event (a job ending, an anchor)."""
ACCESS_TOKEN_TTL = "6s"
"""Short, so that the tests see tokens expire and refresh."""
PASSWORD = "correct horse battery"

T = TypeVar("T")


def python_env() -> dict:
    """The environment for `python -m rendertrust.verify` in a subprocess."""
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(SRC), os.environ.get("PYTHONPATH")])))


def eventually(what: str, probe: Callable[[], Optional[T]], seconds: float = EVENT_SECONDS_MAX, every: float = 0.1) -> T:
    """Poll probe until it returns something other than None; fail after seconds."""
    deadline = time.monotonic() + seconds
    last: object = None
    while time.monotonic() < deadline:
        try:
            got = probe()
        except Exception as e:  # a probe may raise while the event has not happened
            last, got = e, None
        if got is not None:
            return got
        time.sleep(every)
    pytest.fail(f"{what}: not within {seconds} s (last: {last!r})")


class Server:
    """A running `rendertrust serve --dev`."""

    def __init__(self, data_dir: pathlib.Path, *extra: str) -> None:
        if not BINARY.exists():
            pytest.fail(f"{BINARY} is missing: run `make build` first (make test-python does)")
        self.data_dir = data_dir
        self.log_path = data_dir / "server.log"
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(
            [str(BINARY), "serve", "--dev", "--data-dir", str(data_dir / "data"), "--addr", "127.0.0.1:0",
             "--anchor-interval", "1s", "--access-token-ttl", ACCESS_TOKEN_TTL, *extra],
            stdout=self._log, stderr=subprocess.STDOUT)
        self.base_url = "http://" + self._logged(r'msg=serving addr=(\S+)')
        self.rpc_url = self._logged(r'msg="dev chain" rpc=(\S+)')
        self.contract = self._logged(r'msg="dev chain" rpc=\S+ contract=(\S+)')
        self.chain_id = int(self._logged(r'msg="dev chain" .* chain_id=(\d+)'))
        eventually("readyz", lambda: urllib.request.urlopen(self.base_url + "/readyz", timeout=5).status == 200 or None,
                   START_SECONDS_MAX)

    def _logged(self, pattern: str) -> str:
        def probe() -> Optional[str]:
            if self.proc.poll() is not None:
                pytest.fail(f"the server exited ({self.proc.returncode}):\n{self.log_path.read_text()}")
            m = re.search(pattern, self.log_path.read_text())
            return m.group(1) if m else None
        return eventually(f"the server's log line /{pattern}/", probe, START_SECONDS_MAX, 0.05)

    def stop(self) -> None:
        self.proc.terminate()
        try:
            self.proc.wait(timeout=90)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self._log.close()


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One server for the session."""
    s = Server(tmp_path_factory.mktemp("server"))
    yield s
    s.stop()


def new_email() -> str:
    return f"creator-{uuid.uuid4().hex[:12]}@example.com"


@pytest.fixture
def client(server: Server) -> Iterator[RenderTrustClient]:
    """A logged-in creator with 100 credits (the dev provider credits at once)."""
    with RenderTrustClient(base_url=server.base_url, timeout=30) as c:
        c.register(new_email(), PASSWORD, name="Test Creator")
        c.checkout("credits_100")
        yield c


def node_ready(c: RenderTrustClient) -> None:
    """Wait until the dev node has reported to the server: submit a free
    echo until it is not refused for want of a healthy node."""
    def probe() -> Optional[bool]:
        try:
            job = c.submit_job(job_type="echo", payload={"ready": True})
        except NoHealthyNodesError:
            return None
        c.wait_for_job(job["job_id"], timeout=EVENT_SECONDS_MAX)
        return True
    eventually("the dev node healthy", probe)


@pytest.fixture
def ready_client(client: RenderTrustClient) -> RenderTrustClient:
    """client, once the dev node takes jobs."""
    node_ready(client)
    return client


def pytest_collection_modifyitems(config: pytest.Config, items: list) -> None:
    """Tests that run a render job need the dev node's demo executors
    (issue 18). Until they are merged, such a test is an expected failure
    with that reason outside CI; under CI=true it runs and must pass."""
    if os.environ.get("CI") == "true":
        return
    for item in items:
        if item.get_closest_marker("needs_demo_executors"):
            item.add_marker(pytest.mark.xfail(
                reason="needs the dev node's render demo executor (issue 18, branch wip-guide); runs strictly under CI=true",
                strict=False))

