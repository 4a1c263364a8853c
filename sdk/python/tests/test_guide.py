"""The creator guide's Python snippets, verbatim (seed/creator-guide.txt).

Each snippet is the guide's text character for character; before it runs,
only the base URL, the credentials and the guide's placeholder job id
("job-uuid") are replaced by the test server's, as a creator would.
"""

import contextlib
import io
import json
import pathlib

import pytest

from rendertrust import RenderTrustClient

from conftest import EVENT_SECONDS_MAX, PASSWORD, Server, eventually, new_email, node_ready

SUBMIT = '''from rendertrust import RenderTrustClient
client = RenderTrustClient(base_url="https://api.rendertrust.com")
client.login("you@example.com", "your-password")
# Submit a job
result = client.submit_job(
job_type="render",
payload={"ref": "s3://your-bucket/scene.blend"}
)
print(f"Job {result['job_id']} dispatched to node {result['node_id']}")'''

STATUS = '''# Check job status
job = client.get_job("job-uuid")
print(f"Status: {job['status']}")
# List all running jobs
running = client.list_jobs(status="RUNNING")
for job in running:
print(f"{job['id']}: {job['status']}")'''

DOWNLOAD = '''# Download result to a file
filepath = client.download_result("job-uuid", output_path="output.png")
print(f"Saved to {filepath}")'''

CANCEL = '''client.cancel_job("job-uuid")'''


def python(snippet: str) -> str:
    """The snippet as Python: the guide's rendering dropped the indentation
    of loop bodies, which Python needs; a line after a ``for …:`` line is
    its body."""
    out, indent = [], False
    for line in snippet.splitlines():
        out.append(("    " if indent else "") + line)
        indent = line.rstrip().endswith(":") and line.lstrip().startswith("for ")
    return "\n".join(out)


def run(snippet: str, namespace: dict, **replace: str) -> str:
    """Run a guide snippet with the replacements; returns what it printed."""
    code = python(snippet)
    for old, new in replace.items():
        assert old in code, f"{old!r} is not in the snippet"
        code = code.replace(old, new)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(compile(code, "<creator guide>", "exec"), namespace)
    return out.getvalue()


@pytest.fixture
def creator(server: Server) -> dict:
    """An account with credits, and the namespace a creator's script has."""
    email = new_email()
    with RenderTrustClient(base_url=server.base_url) as c:
        c.register(email, PASSWORD, "Guide Reader")
        c.checkout("credits_100")
        node_ready(c)
    return {"email": email, "server": server}


def login(creator: dict) -> dict:
    return {"RenderTrustClient": RenderTrustClient, "client": None, "__name__": "guide"}, {
        '"https://api.rendertrust.com"': f'"{creator["server"].base_url}"',
        '"you@example.com"': f'"{creator["email"]}"',
        '"your-password"': f'"{PASSWORD}"',
    }


@pytest.mark.needs_demo_executors
def test_submit_render(creator: dict) -> None:
    namespace, replace = login(creator)
    printed = run(SUBMIT, namespace, **replace)
    result = namespace["result"]
    assert printed == f"Job {result['job_id']} dispatched to node {result['node_id']}\n"
    assert result["cost"] == 10 and result["status"] in ("QUEUED", "DISPATCHED")
    client = namespace["client"]
    assert client.wait_for_job(result["job_id"], timeout=EVENT_SECONDS_MAX)["status"] == "COMPLETED"
    # the settlement reactor deducts the hold right after the completion
    eventually("the render charged", lambda: client.get_job(result["job_id"])["charged"] == 10 or None)


def logged_in(creator: dict) -> dict:
    c = RenderTrustClient(base_url=creator["server"].base_url)
    c.login(creator["email"], PASSWORD)
    return {"client": c}


def test_status_and_list(creator: dict) -> None:
    namespace = logged_in(creator)
    c = namespace["client"]
    job = c.submit_job(job_type="cpu_benchmark", payload={"rounds": 1 << 25})
    eventually("the benchmark started", lambda: c.get_job(job["job_id"])["status"] in ("RUNNING", "COMPLETED") or None)
    printed = run(STATUS, namespace, **{'"job-uuid"': f'"{job["job_id"]}"'})
    lines = printed.splitlines()
    assert lines[0] in ("Status: RUNNING", "Status: COMPLETED")
    if lines[0] == "Status: RUNNING" and len(lines) > 1:
        assert lines[1:] == [f"{job['job_id']}: RUNNING"]
    c.wait_for_job(job["job_id"], timeout=EVENT_SECONDS_MAX)


def test_download(creator: dict, tmp_path: pathlib.Path, monkeypatch: pytest.MonkeyPatch) -> None:
    namespace = logged_in(creator)
    c = namespace["client"]
    job = c.wait_for_job(c.submit_job(job_type="echo", payload={"frame": 1})["job_id"], timeout=EVENT_SECONDS_MAX)
    monkeypatch.chdir(tmp_path)
    printed = run(DOWNLOAD, namespace, **{'"job-uuid"': f'"{job["id"]}"'})
    assert printed == "Saved to output.png\n"
    assert json.loads((tmp_path / "output.png").read_bytes()) == {"frame": 1}


def test_cancel(creator: dict) -> None:
    namespace = logged_in(creator)
    c = namespace["client"]
    busy = c.submit_job(job_type="cpu_benchmark", payload={"rounds": 1 << 25})
    queued = c.submit_job(job_type="cpu_benchmark", payload={"rounds": 10})
    run(CANCEL, namespace, **{'"job-uuid"': f'"{queued["job_id"]}"'})
    assert c.get_job(queued["job_id"])["status"] == "CANCELLED"
    c.wait_for_job(busy["job_id"], timeout=EVENT_SECONDS_MAX)
