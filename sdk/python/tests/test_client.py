"""Every method and every exception of RenderTrustClient against the real
server (see conftest.py)."""

import hashlib
import json
import pathlib
import subprocess
import sys
import threading
import urllib.error
import urllib.request
import uuid

import pytest

import rendertrust.client as client_module
from rendertrust import (
    AuthenticationError,
    ChecksumMismatchError,
    InsufficientCreditsError,
    NoHealthyNodesError,
    NotFoundError,
    RateLimitedError,
    RenderTrustClient,
    RenderTrustError,
)
from rendertrust import verify

from conftest import EVENT_SECONDS_MAX, PASSWORD, Server, eventually, new_email, python_env

# A cpu_benchmark this long keeps the dev node's one slot busy for a few
# seconds, so that the next job waits QUEUED.
SLOT_HOLDING_ROUNDS = 1 << 25


def charged(c: RenderTrustClient, job_id: str, credits: int) -> None:
    """Wait for the settlement reactor to deduct a completed job's hold."""
    eventually(f"job {job_id} charged", lambda: c.get_job(job_id)["charged"] == credits or None)


def test_session(server: Server) -> None:
    email = new_email()
    with RenderTrustClient(base_url=server.base_url) as c:
        user = c.register(email, PASSWORD, name="Ada")
        assert user["email"] == email and user["name"] == "Ada" and user["role"] == "creator"
        assert c.me()["id"] == user["id"]
        c.logout()
        assert c.access_token is None
        with pytest.raises(AuthenticationError) as e:
            c.me()
        assert e.value.status == 401 and e.value.code == "unauthorized"
        assert c.login(email, PASSWORD)["id"] == user["id"]
        with pytest.raises(RenderTrustError) as conflict:
            RenderTrustClient(base_url=server.base_url).register(email, PASSWORD, "Ada again")
        assert (conflict.value.status, conflict.value.code) == (409, "conflict")


def test_credits(client: RenderTrustClient) -> None:
    packages = {p["id"]: p for p in client.packages()}
    assert {k: (p["credits"], p["price_cents"]) for k, p in packages.items()} == {
        "credits_100": (100, 1000), "credits_500": (500, 4000), "credits_1000": (1000, 7000)}
    checkout = client.checkout("credits_500")
    assert checkout["dev"] is True and checkout["purchase_id"]
    assert client.balance() == {"balance": 600, "held": 0, "available": 600}
    history = client.transactions()
    assert [t["type"] for t in history] == ["purchase", "purchase"] and all(t["entry_id"] for t in history)
    usage = client.usage()
    assert len(usage["days"]) == 7 and usage["total"] == 0
    assert client.usage(days=3, tz="Europe/Paris")["time_zone"] == "Europe/Paris"
    with pytest.raises(RenderTrustError) as e:
        client.usage(tz="Not/AZone")
    assert (e.value.status, e.value.code) == (400, "invalid")


def test_jobs(ready_client: RenderTrustClient, tmp_path: pathlib.Path) -> None:
    c = ready_client
    submitted = c.submit_job(job_type="echo", payload={"hello": "world"}, priority="high")
    assert set(submitted) >= {"job_id", "node_id", "status", "cost"} and submitted["cost"] == 0
    job = c.wait_for_job(submitted["job_id"], timeout=EVENT_SECONDS_MAX)
    assert job["status"] == "COMPLETED" and job["priority"] == "high"
    assert c.get_job(job["id"])["result_sha256"] == job["result_sha256"]
    path = c.download_result(job["id"], output_path=tmp_path / "echo.json")
    data = pathlib.Path(path).read_bytes()
    assert hashlib.sha256(data).hexdigest() == job["result_sha256"] and json.loads(data) == {"hello": "world"}
    assert c.download_result(job["id"], output_path=tmp_path) == str(tmp_path / f"{job['id']}.result")

    bench = c.submit_job(job_type="cpu_benchmark", payload={"rounds": 1000})
    assert bench["cost"] == 1
    assert c.wait_for_job(bench["job_id"], timeout=EVENT_SECONDS_MAX)["status"] == "COMPLETED"
    charged(c, bench["job_id"], 1)
    uri = c.submit_job(job_type="echo", payload="s3://your-bucket/scene.blend")
    assert c.get_job(uri["job_id"])["payload_ref"] == "s3://your-bucket/scene.blend"
    c.wait_for_job(uri["job_id"], timeout=EVENT_SECONDS_MAX)

    ids = {j["id"] for j in c.list_jobs()}
    assert {job["id"], bench["job_id"], uri["job_id"]} <= ids
    assert all(j["status"] == "COMPLETED" for j in c.list_jobs(status="COMPLETED"))
    assert c.list_jobs(status="RUNNING") == []


def test_list_jobs_follows_pages(ready_client: RenderTrustClient, monkeypatch: pytest.MonkeyPatch) -> None:
    for i in range(5):
        ready_client.submit_job(job_type="echo", payload={"i": i})
    monkeypatch.setattr(client_module, "PAGE_LIMIT", 2)
    jobs = ready_client.list_jobs()
    assert len(jobs) == 6 and len({j["id"] for j in jobs}) == 6  # with node_ready's echo


def test_submission_is_idempotent(ready_client: RenderTrustClient) -> None:
    key = str(uuid.uuid4())
    first = ready_client.submit_job(job_type="cpu_benchmark", payload={"rounds": 10}, idempotency_key=key)
    again = ready_client.submit_job(job_type="cpu_benchmark", payload={"rounds": 10}, idempotency_key=key)
    assert again["job_id"] == first["job_id"]
    ready_client.wait_for_job(first["job_id"], timeout=EVENT_SECONDS_MAX)
    charged(ready_client, first["job_id"], 1)
    assert ready_client.balance()["balance"] == 99  # charged once
    with pytest.raises(RenderTrustError) as e:
        ready_client.submit_job(job_type="cpu_benchmark", payload={"rounds": 11}, idempotency_key=key)
    assert (e.value.status, e.value.code) == (409, "conflict")


def test_cancel(ready_client: RenderTrustClient) -> None:
    busy = ready_client.submit_job(job_type="cpu_benchmark", payload={"rounds": SLOT_HOLDING_ROUNDS})
    queued = ready_client.submit_job(job_type="cpu_benchmark", payload={"rounds": 10})
    assert queued["status"] in ("QUEUED", "DISPATCHED"), queued
    ready_client.cancel_job(queued["job_id"])
    job = ready_client.get_job(queued["job_id"])
    assert job["status"] == "CANCELLED" and not job["cancellable"]
    with pytest.raises(RenderTrustError) as e:
        ready_client.cancel_job(queued["job_id"])
    assert (e.value.status, e.value.code) == (409, "conflict")
    ready_client.wait_for_job(busy["job_id"], timeout=EVENT_SECONDS_MAX)
    charged(ready_client, busy["job_id"], 1)
    assert ready_client.balance() == {"balance": 99, "held": 0, "available": 99}


def test_errors(server: Server, ready_client: RenderTrustClient) -> None:
    with RenderTrustClient(base_url=server.base_url) as broke:
        broke.register(new_email(), PASSWORD, "Broke")
        with pytest.raises(InsufficientCreditsError) as e402:
            broke.submit_job(job_type="cpu_benchmark", payload={"rounds": 10})
    assert (e402.value.status, e402.value.code) == (402, "insufficient_credits") and e402.value.request_id
    with pytest.raises(NoHealthyNodesError) as e503:
        ready_client.submit_job(job_type="echo", payload={}, gpu_required=True)  # the dev node has no GPU
    assert (e503.value.status, e503.value.code) == (503, "no_healthy_nodes")
    with pytest.raises(NotFoundError) as e404:
        ready_client.get_job(str(uuid.uuid4()))
    assert (e404.value.status, e404.value.code) == (404, "not_found")
    with pytest.raises(NotFoundError):
        ready_client.download_result(str(uuid.uuid4()))
    with pytest.raises(AuthenticationError) as e401:
        RenderTrustClient(base_url=server.base_url).balance()
    assert e401.value.status == 401
    with pytest.raises(RenderTrustError) as invalid:
        ready_client.submit_job(job_type="teleport", payload={})
    assert (invalid.value.status, invalid.value.code) == (400, "invalid")
    with pytest.raises(ValueError):
        ready_client.get_job("")


def test_rate_limited(tmp_path: pathlib.Path) -> None:
    """On a server of its own: its failed logins do not lock the session's clients out."""
    s = Server(tmp_path)
    try:
        email = new_email()
        RenderTrustClient(base_url=s.base_url).register(email, PASSWORD, "Guesser")
        c = RenderTrustClient(base_url=s.base_url)
        with pytest.raises(AuthenticationError) as wrong:
            c.login(email, "wrong password")
        assert (wrong.value.status, wrong.value.code) == (401, "unauthorized")

        def probe() -> object:
            try:
                c.login(email, "wrong password")
            except RateLimitedError as e:
                return e
            except AuthenticationError:
                return None
            pytest.fail("a wrong password logged in")
        limited = eventually("429 after repeated failed logins", probe, every=0)
        assert (limited.status, limited.code) == (429, "rate_limited")  # type: ignore[attr-defined]
        assert 0 < limited.retry_after <= 60  # type: ignore[attr-defined]
    finally:
        s.stop()


def test_token_expiry_and_refresh(client: RenderTrustClient) -> None:
    # 1. the client refreshes before the token expires
    first = client.access_token
    eventually("a refresh before expiry", lambda: client.balance() and (client.access_token != first or None))
    # 2. a token the server refuses (401) is refreshed once and the call repeated
    stale = client.access_token
    client._expires_at = float("inf")  # the client believes it is still valid

    def refused() -> object:
        req = urllib.request.Request(client.base_url + "/api/v1/credits/balance", headers={"Authorization": f"Bearer {stale}"})
        try:
            urllib.request.urlopen(req, timeout=10)
        except urllib.error.HTTPError as e:
            return e.code == 401 or None
        return None
    eventually("the server to refuse the expired token", refused)
    assert client.balance()["balance"] == 100 and client.access_token != stale


def test_refresh_under_threads(client: RenderTrustClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Eight threads find the token expired at once: one refresh, all succeed
    (two refreshes with one rotated token would revoke the session)."""
    refreshes = []
    round_trip = client._round_trip

    def counting(method: str, target: str, *args: object) -> object:
        if target.endswith("/auth/refresh"):
            refreshes.append(target)
        return round_trip(method, target, *args)
    monkeypatch.setattr(client, "_round_trip", counting)
    client._expires_at = 0.0
    barrier, errors = threading.Barrier(8), []

    def call() -> None:
        barrier.wait()
        try:
            client.balance()
        except Exception as e:  # reported below
            errors.append(e)
    threads = [threading.Thread(target=call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == [] and len(refreshes) == 1
    assert client.balance()["available"] == 100


def test_refresh_token_reuse_revokes_the_session(server: Server, client: RenderTrustClient) -> None:
    old_access, old_refresh = client.access_token, client.refresh_token
    client._expires_at = 0.0
    client.balance()  # rotates
    assert client.refresh_token != old_refresh
    thief = RenderTrustClient(base_url=server.base_url, access_token=old_access, refresh_token=old_refresh)
    thief._expires_at = 0.0
    with pytest.raises(AuthenticationError):
        thief.balance()
    client._expires_at = 0.0
    with pytest.raises(AuthenticationError):
        client.balance()  # the whole family was revoked


def test_download_checksum_failure(server: Server, ready_client: RenderTrustClient, tmp_path: pathlib.Path) -> None:
    """A result altered on disk in the server's blob store after completion
    is refused: nothing is written to output_path."""
    job = ready_client.submit_job(job_type="echo", payload={"frame": 12})
    done = ready_client.wait_for_job(job["job_id"], timeout=EVENT_SECONDS_MAX)
    stored = [p for p in (server.data_dir / "data" / "results").rglob("*")
              if p.is_file() and hashlib.sha256(p.read_bytes()).hexdigest() == done["result_sha256"]]
    assert stored, "the result is not in the blob store"
    for p in stored:
        data = bytearray(p.read_bytes())
        data[0] ^= 0x01
        p.write_bytes(bytes(data))
    out = tmp_path / "result.json"
    with pytest.raises(ChecksumMismatchError) as e:
        ready_client.download_result(job["job_id"], output_path=out)
    assert e.value.expected == done["result_sha256"] and e.value.actual != e.value.expected
    assert not out.exists() and list(tmp_path.iterdir()) == []


def anchored_proof(c: RenderTrustClient, entry_id: str) -> dict:
    def probe() -> object:
        try:
            return c.proof(entry_id)
        except RenderTrustError as e:
            if e.code == "not_anchored":
                return None
            raise
    return eventually(f"entry {entry_id} anchored", probe, every=0.2)


def test_verifier_on_live_anchors(server: Server, client: RenderTrustClient, tmp_path: pathlib.Path) -> None:
    entry = client.transactions()[0]["entry_id"]
    proof = anchored_proof(client, entry)
    assert client.verify(entry)["verified"] is True
    result = verify.verify_proof(proof, server.rpc_url, server.contract, server.chain_id)
    assert result.verified, result.report()
    other = verify.verify_proof(proof, server.rpc_url, "0x" + "00" * 19 + "01", server.chain_id)
    assert not other.verified and "contract" in other.failed
    assert verify.verify_proof(proof, server.rpc_url, server.contract, server.chain_id + 1).failed == ["chain_id"]
    tampered = dict(proof, entry=proof["entry"][:-8] + ("AAAAAAA=" if proof["entry"][-8:] != "AAAAAAA=" else "BBBBBBB="))
    assert "leaf_hash" in verify.verify_proof(tampered, server.rpc_url, server.contract, server.chain_id).failed

    # a later anchor extends the earlier one
    client.checkout("credits_100")
    later_entry = client.transactions()[0]["entry_id"]
    later = anchored_proof(client, later_entry)
    assert later["tree_size"] > proof["tree_size"]
    consistency = client.consistency(proof["tree_size"], later["tree_size"])
    result = verify.verify_proof(consistency, server.rpc_url, server.contract, server.chain_id)
    assert result.verified, result.report()

    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(later))
    cli = subprocess.run([sys.executable, "-m", "rendertrust.verify", str(proof_file), "--rpc", server.rpc_url,
                          "--contract", server.contract, "--chain-id", str(server.chain_id), "--json"],
                         env=python_env(), capture_output=True, text=True, timeout=120)
    assert cli.returncode == 0 and json.loads(cli.stdout)["verified"] is True, cli.stdout + cli.stderr


def test_retries_only_what_is_safe(client: RenderTrustClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """A dropped connection is retried for a GET and for a POST with an
    idempotency key (the submission runs once), never for a POST without one."""
    monkeypatch.setattr(client_module, "RETRY_BACKOFF_SECONDS", 0.01)
    attempts: list = []
    round_trip = client._round_trip

    def flaky(method: str, target: str, *args: object) -> object:
        if target.endswith("/auth/refresh"):  # the short-lived token may be refreshed meanwhile
            return round_trip(method, target, *args)
        attempts.append((method, target))
        if len(attempts) % 2 == 1:
            raise ConnectionResetError("dropped")
        return round_trip(method, target, *args)
    monkeypatch.setattr(client, "_round_trip", flaky)
    assert client.balance()["balance"] == 100 and len(attempts) == 2
    attempts.clear()
    job = client.submit_job(job_type="cpu_benchmark", payload={"rounds": 10})
    assert len(attempts) == 2
    assert [j["id"] for j in client.list_jobs() if j["job_type"] == "cpu_benchmark"] == [job["job_id"]]
    attempts.clear()
    with pytest.raises(RenderTrustError) as e:
        client.logout()  # POST auth/logout carries no key
    assert e.value.status == 0 and len(attempts) == 1


def test_checkout_is_idempotent(client: RenderTrustClient) -> None:
    key = str(uuid.uuid4())
    first = client.checkout("credits_100", idempotency_key=key)
    again = client.checkout("credits_100", idempotency_key=key)
    assert again["purchase_id"] == first["purchase_id"]
    assert client.balance()["balance"] == 200
