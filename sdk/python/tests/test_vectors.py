"""The shared proof vectors (anchor/proof/testdata/vectors), the same files
the Go verifier's TestVectors runs: the Python verifier must reach the same
verdict and fail exactly the same checks on every one."""

import json
import pathlib
import subprocess
import sys

import pytest

from rendertrust import verify
from rendertrust._keccak import keccak256

import rpcfixture
from conftest import python_env

REPO = pathlib.Path(__file__).resolve().parents[3]
VECTORS = sorted((REPO / "anchor" / "proof" / "testdata" / "vectors").glob("*.json"))


def test_vectors_present() -> None:
    kinds = {json.loads(p.read_text())["kind"] for p in VECTORS}
    assert len(VECTORS) >= 20 and kinds == {"inclusion", "consistency"}


@pytest.mark.parametrize("path", VECTORS, ids=[p.stem for p in VECTORS])
def test_vector(path: pathlib.Path) -> None:
    v = json.loads(path.read_text())
    with rpcfixture.serve(v["chain"]) as url:
        result = verify.verify_proof(v["proof"], url, v["trusted"]["contract"], v["trusted"]["chain_id"])
    assert (result.verified, result.failed) == (v["expect"]["verified"], v["expect"]["failed"]), (
        v["description"], result.details)


def test_forged_contract_refused_by_the_command_line(tmp_path: pathlib.Path) -> None:
    """H1 through `python -m rendertrust.verify`: the same forged proof
    verifies only when the auditor trusts the contract it names."""
    v = json.loads((REPO / "anchor/proof/testdata/vectors/inclusion-other-contract.json").read_text())
    proof_file = tmp_path / "proof.json"
    proof_file.write_text(json.dumps(v["proof"]))
    with rpcfixture.serve(v["chain"]) as url:
        def run(contract: str) -> subprocess.CompletedProcess:
            return subprocess.run([sys.executable, "-m", "rendertrust.verify", str(proof_file), "--rpc", url,
                                   "--contract", contract, "--chain-id", str(v["trusted"]["chain_id"])],
                                  env=python_env(), capture_output=True, text=True, timeout=60)
        trusted = run(v["trusted"]["contract"])
        named = run(v["proof"]["anchor"]["contract"])
    assert trusted.returncode == 1 and "FAILED contract" in trusted.stdout, trusted.stdout + trusted.stderr
    assert named.returncode == 0 and named.stdout.rstrip().endswith("verified"), named.stdout + named.stderr


def test_abi_constants_from_keccak() -> None:
    """The selector and topic are derived from the ABI signatures with
    Keccak-256; these are the values anchor/AUDITORS.md publishes."""
    assert keccak256(b"").hex() == "c5d2460186f7233c927e7db2dcc703c0e500b653ca82273b7bfad8045d85a470"
    assert verify.ROOT_AT_SELECTOR.hex() == "eaa38b41"
    assert verify.ANCHORED_TOPIC.hex() == "4ac5b9bdb01817da80ec1c33e76c5bef927ab969dd8e8ba4ce21da0d7996e56f"


def test_bad_trust_inputs() -> None:
    with pytest.raises(ValueError):
        verify.verify_proof({"audit_path": []}, "http://127.0.0.1:1", "0x1234", 1337)
    with pytest.raises(ValueError):
        verify.verify_proof({"audit_path": []}, "http://127.0.0.1:1", "0x" + "ab" * 20, 0)
