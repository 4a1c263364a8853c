"""An offline verifier of RenderTrust ledger proofs, for auditors.

Written from RFC 9162 (Certificate Transparency 2.0, §2.1: the Merkle tree,
inclusion and consistency proofs) and the ``Anchor`` contract's ABI
(``contracts/Anchor.abi``), independently of the server's Go code. It needs
the proof document, ``hashlib``, and any JSON-RPC endpoint of the chain::

    python -m rendertrust.verify proof.json --rpc URL --contract ADDR --chain-id N

The contract address and chain id are the auditor's own inputs, taken from
where the operator publishes them — never from the proof: anyone can deploy
a copy of the contract, anchor a forged log in it and name that copy in a
proof. Every anchor a proof names must be on that chain and in that
contract, and the roots are read from that contract.

The checks carry the names the server's ``GET /api/v1/ledger/{id}/verify``
and ``rendertrust verify`` use, so the three can be compared check by check.
"""

import argparse
import base64
import binascii
import hashlib
import json
import sys
import urllib.error
import urllib.request
from typing import Any, Dict, List, Mapping, Optional, Sequence

from ._keccak import keccak256

__all__ = [
    "ALG",
    "RpcError",
    "Chain",
    "Verification",
    "leaf_hash",
    "node_hash",
    "verify_inclusion_path",
    "verify_consistency_path",
    "verify_inclusion",
    "verify_consistency",
    "verify_proof",
    "main",
]

ALG = "rfc9162-sha256"
"""The only algorithm a proof may name: RFC 9162 over SHA-256."""

PROOF_FILE_BYTES_MAX = 1 << 20
"""Largest proof document read (an entry is at most 256 KiB, base64 adds a third)."""
RPC_TIMEOUT_SECONDS = 30.0
"""Timeout of one JSON-RPC call."""
RPC_RESPONSE_BYTES_MAX = 8 << 20
"""Largest JSON-RPC answer read."""

# From the ABI: the function the contract stores roots behind and the
# event it emits when anchoring.
ROOT_AT_SIGNATURE = "rootAt(uint64)"
ANCHORED_SIGNATURE = "Anchored(uint64,bytes32)"
ROOT_AT_SELECTOR = keccak256(ROOT_AT_SIGNATURE.encode())[:4]
ANCHORED_TOPIC = keccak256(ANCHORED_SIGNATURE.encode())


class RpcError(Exception):
    """The chain's endpoint could not be asked, or answered a JSON-RPC error.
    Not a verdict on the proof: try again, or use another endpoint."""


# --- RFC 9162 §2.1 ---


def leaf_hash(entry: bytes) -> bytes:
    """The leaf hash of an entry: SHA-256(0x00 ‖ entry) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x00" + entry).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """An interior node: SHA-256(0x01 ‖ left ‖ right) (RFC 9162 §2.1.1)."""
    return hashlib.sha256(b"\x01" + left + right).digest()


def _shift_until_odd_or_zero(fn: int, sn: int) -> "tuple[int, int]":
    while fn & 1 == 0 and fn != 0:
        fn, sn = fn >> 1, sn >> 1
    return fn, sn


def verify_inclusion_path(leaf: bytes, leaf_index: int, tree_size: int, path: Sequence[bytes], root: bytes) -> bool:
    """Whether ``path`` proves the leaf hash ``leaf`` at ``leaf_index`` in the
    tree of ``tree_size`` leaves whose root is ``root`` (RFC 9162 §2.1.3.2)."""
    if leaf_index < 0 or leaf_index >= tree_size:
        return False
    fn, sn, r = leaf_index, tree_size - 1, leaf
    for p in path:
        if sn == 0:
            return False  # the path is longer than the tree is deep
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            r = node_hash(r, p)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and r == root


def verify_consistency_path(first: int, second: int, path: Sequence[bytes], first_root: bytes, second_root: bytes) -> bool:
    """Whether ``path`` proves that the tree of ``second`` leaves (root
    ``second_root``) extends the tree of ``first`` leaves (root
    ``first_root``) (RFC 9162 §2.1.4.2). Equal sizes need an empty path and
    equal roots."""
    if first <= 0 or first > second:
        return False
    if first == second:
        return not path and first_root == second_root
    if not path:
        return False
    path = list(path)
    if first & (first - 1) == 0:  # an exact power of 2: the first tree is a subtree
        path.insert(0, first_root)
    fn, sn = first - 1, second - 1
    while fn & 1:
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            return False
        if fn & 1 or fn == sn:
            fr, sr = node_hash(c, fr), node_hash(c, sr)
            if not fn & 1:
                fn, sn = _shift_until_odd_or_zero(fn, sn)
        else:
            sr = node_hash(sr, c)
        fn, sn = fn >> 1, sn >> 1
    return sn == 0 and fr == first_root and sr == second_root


# --- the chain ---


class Chain:
    """The chain's JSON-RPC endpoint, asked with plain ``urllib``."""

    def __init__(self, url: str, timeout: float = RPC_TIMEOUT_SECONDS) -> None:
        """An endpoint at ``url`` (http or https)."""
        self.url = url
        self.timeout = timeout
        self._id = 0

    def call(self, method: str, params: List[Any]) -> Any:
        """The ``result`` of one JSON-RPC call. Raises RpcError."""
        self._id += 1
        body = json.dumps({"jsonrpc": "2.0", "id": self._id, "method": method, "params": params}).encode()
        req = urllib.request.Request(self.url, body, {"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                answer = json.loads(resp.read(RPC_RESPONSE_BYTES_MAX))
        except (OSError, ValueError) as e:
            raise RpcError(f"{method} at {self.url}: {e}") from e
        if not isinstance(answer, dict) or answer.get("error") is not None or "result" not in answer:
            raise RpcError(f"{method} at {self.url}: {answer.get('error') if isinstance(answer, dict) else answer}")
        return answer["result"]

    def chain_id(self) -> int:
        """``eth_chainId``."""
        return int(self.call("eth_chainId", []), 16)

    def root_at(self, contract: str, tree_size: int) -> Optional[bytes]:
        """The contract's ``rootAt(tree_size)`` (32 zero bytes when it holds
        none), or None when there is no contract at that address."""
        data = "0x" + ROOT_AT_SELECTOR.hex() + tree_size.to_bytes(32, "big").hex()
        result = self.call("eth_call", [{"to": contract, "data": data}, "latest"])
        raw = bytes.fromhex(result[2:])
        if not raw:
            return None  # no code at the address answers empty
        return raw[:32]

    def receipt(self, tx_hash: str) -> Optional[Dict[str, Any]]:
        """``eth_getTransactionReceipt``, or None for a transaction the chain does not have."""
        return self.call("eth_getTransactionReceipt", [tx_hash])

    def block_hash(self, number: int) -> Optional[str]:
        """The canonical block hash at ``number``, or None past the head."""
        block = self.call("eth_getBlockByNumber", [hex(number), False])
        return block["hash"] if block else None


# --- verification ---


class Verification:
    """The outcome of a verification: each named check passed or failed.

    ``verified`` is True only if every check passed; ``details`` says what
    broke for each failed check.
    """

    def __init__(self) -> None:
        self.checks: Dict[str, bool] = {}
        self.details: Dict[str, str] = {}

    def add(self, name: str, ok: bool, detail: str = "") -> None:
        """Record a check; a check that failed once stays failed."""
        self.checks[name] = self.checks.get(name, True) and bool(ok)
        if not ok and detail and name not in self.details:
            self.details[name] = detail

    @property
    def verified(self) -> bool:
        """True only if every check passed."""
        return bool(self.checks) and all(self.checks.values())

    @property
    def failed(self) -> List[str]:
        """The names of the failed checks, sorted."""
        return sorted(name for name, ok in self.checks.items() if not ok)

    def as_dict(self) -> Dict[str, Any]:
        """``{"verified", "checks", "details"}``, the shape the API answers."""
        return {"verified": self.verified, "checks": dict(self.checks), "details": dict(self.details)}

    def report(self) -> str:
        """One line per check, then the verdict."""
        lines = []
        for name, ok in self.checks.items():
            detail = f": {self.details[name]}" if name in self.details else ""
            lines.append(f"{'ok    ' if ok else 'FAILED'} {name}{detail}")
        lines.append("verified" if self.verified else f"NOT verified: {', '.join(self.failed)} failed")
        return "\n".join(lines)


def _hash(value: Any) -> Optional[bytes]:
    """A Merkle hash of the proof format: 64 hex digits, no prefix."""
    if not isinstance(value, str) or len(value) != 64:
        return None
    try:
        return bytes.fromhex(value)
    except ValueError:
        return None


def _chain_hash(value: Any) -> Optional[str]:
    """A 0x-prefixed 32-byte hash as JSON-RPC writes it, lower-cased."""
    if isinstance(value, str) and len(value) == 66 and value[:2] == "0x" and _hash(value[2:]) is not None:
        return value.lower()
    return None


def _address(value: Any) -> Optional[str]:
    """A 20-byte address (with or without 0x), lower-cased with 0x."""
    if not isinstance(value, str):
        return None
    v = value[2:] if value[:2] in ("0x", "0X") else value
    if len(v) != 40:
        return None
    try:
        bytes.fromhex(v)
    except ValueError:
        return None
    return "0x" + v.lower()


def _path(values: Any) -> Optional[List[bytes]]:
    if not isinstance(values, list):
        return None
    out = [_hash(v) for v in values]
    return None if any(h is None for h in out) else out  # type: ignore[return-value]


def _anchored_log(receipt: Mapping[str, Any], contract: str, tree_size: int, root: bytes) -> bool:
    """Whether the receipt carries ``Anchored(tree_size, root)`` emitted by ``contract``.
    treeSize is the event's one indexed input (topic 1); root is its data."""
    for log in receipt.get("logs") or []:
        topics = [str(t).lower() for t in log.get("topics") or []]
        if (_address(log.get("address")) == contract and len(topics) == 2
                and topics[0] == "0x" + ANCHORED_TOPIC.hex()
                and topics[1] == "0x" + tree_size.to_bytes(32, "big").hex()
                and str(log.get("data", "")).lower() == "0x" + root.hex()):
            return True
    return False


def _check_anchor(v: Verification, chain: Chain, contract: str, chain_id: int, names: "tuple[str, str, str]",
                  anchor: Mapping[str, Any], tree_size: int, root: Optional[bytes]) -> None:
    """The chain checks of one anchor: it names the trusted chain and
    contract, the trusted contract holds ``root`` for ``tree_size``, the
    named transaction emitted it, in the named, canonical block."""
    root_check, tx_check, block_check = names
    served = chain.chain_id()
    v.add("chain_id", served == chain_id and anchor.get("chain_id") == chain_id,
          f"trusted chain {chain_id}, endpoint serves chain {served}, anchor names chain {anchor.get('chain_id')}")
    v.add("contract", _address(anchor.get("contract")) == contract,
          f"anchor names contract {anchor.get('contract')!r}, the trusted contract is {contract}")
    on_chain = chain.root_at(contract, tree_size)
    if on_chain is None:
        for name in names:
            v.add(name, False, f"no contract at {contract}")
        return
    v.add(root_check, root is not None and on_chain == root,
          f"the trusted contract holds {on_chain.hex()} for size {tree_size}")
    tx = _chain_hash(anchor.get("tx_hash"))
    receipt = chain.receipt(tx) if tx else None
    if receipt is None:
        v.add(tx_check, False, f"transaction {anchor.get('tx_hash')!r} is not on the chain")
        v.add(block_check, False, "no receipt")
        return
    v.add(tx_check, receipt.get("status") == "0x1" and root is not None and _anchored_log(receipt, contract, tree_size, root),
          f"transaction {tx} emitted no Anchored({tree_size}, root) from {contract}")
    block = _chain_hash(anchor.get("block_hash"))
    number = anchor.get("block_number")
    in_block = (block is not None and isinstance(number, int) and str(receipt.get("blockHash", "")).lower() == block
                and int(str(receipt.get("blockNumber", "0x0")), 16) == number)
    if not in_block:
        v.add(block_check, False, f"the transaction is in block {receipt.get('blockNumber')} ({receipt.get('blockHash')}), "
                                  f"the anchor names {number} ({anchor.get('block_hash')})")
        return
    canonical = chain.block_hash(number)  # type: ignore[arg-type]
    v.add(block_check, canonical is not None and canonical.lower() == block, f"canonical block {number} is {canonical}")


def _trusted(contract: str, chain_id: int) -> str:
    address = _address(contract)
    if address is None:
        raise ValueError(f"contract {contract!r} is not an address (0x and 40 hex digits)")
    if not isinstance(chain_id, int) or chain_id <= 0:
        raise ValueError(f"chain id {chain_id!r} must be a positive integer")
    return address


def verify_inclusion(proof: Mapping[str, Any], chain: Chain, contract: str, chain_id: int) -> Verification:
    """Check an inclusion proof (``GET /api/v1/ledger/{entry_id}/proof``)
    completely: the entry's bytes, its leaf hash and id, the audit path to
    the root, and the root against the anchor in the trusted ``contract``
    on the chain ``chain_id``. Raises ValueError for a malformed contract
    or chain id, RpcError when the chain cannot be asked."""
    trusted = _trusted(contract, chain_id)
    v = Verification()
    v.add("alg", proof.get("alg") == ALG, f"alg is {proof.get('alg')!r}")
    try:
        entry: Optional[bytes] = base64.b64decode(proof.get("entry", ""), validate=True)
    except (binascii.Error, TypeError, ValueError):
        entry = None
    leaf = leaf_hash(entry) if entry is not None else None
    v.add("leaf_hash", leaf is not None and leaf == _hash(proof.get("leaf_hash")), "SHA-256(0x00 ‖ entry) differs from leaf_hash")
    entry_id = None
    try:
        envelope = json.loads(entry) if entry is not None else None
        entry_id = envelope.get("id") if isinstance(envelope, dict) else None
    except ValueError:
        pass
    v.add("entry_id", isinstance(entry_id, str) and entry_id == proof.get("entry_id"),
          f"the entry's id is {entry_id!r}, the proof is for {proof.get('entry_id')!r}")
    index, size, position = proof.get("leaf_index"), proof.get("tree_size"), proof.get("position")
    ints = all(isinstance(x, int) for x in (index, size, position))
    v.add("leaf_index", ints and position >= 1 and index == position - 1 and index < size,  # type: ignore[operator]
          f"position {position}, leaf_index {index}, tree_size {size}")
    path, root = _path(proof.get("audit_path")), _hash(proof.get("root"))
    v.add("inclusion", leaf is not None and path is not None and root is not None and ints
          and verify_inclusion_path(leaf, index, size, path, root),  # type: ignore[arg-type]
          "the audit path does not lead from the entry's leaf hash to root (RFC 9162 §2.1.3.2)")
    anchor = proof.get("anchor") if isinstance(proof.get("anchor"), dict) else {}
    _check_anchor(v, chain, trusted, chain_id, ("root_on_chain", "anchor_tx", "anchor_block"), anchor,
                  size if isinstance(size, int) else 0, root)
    return v


def verify_consistency(proof: Mapping[str, Any], chain: Chain, contract: str, chain_id: int) -> Verification:
    """Check a consistency proof (``GET /api/v1/ledger/consistency?from=&to=``):
    the path between the two roots, and each root against its anchor in the
    trusted ``contract`` on the chain ``chain_id``. Raises as verify_inclusion."""
    trusted = _trusted(contract, chain_id)
    v = Verification()
    v.add("alg", proof.get("alg") == ALG, f"alg is {proof.get('alg')!r}")
    s1, s2 = proof.get("tree_size_1"), proof.get("tree_size_2")
    ints = isinstance(s1, int) and isinstance(s2, int)
    v.add("sizes", ints and 0 < s1 <= s2, f"tree_size_1 {s1}, tree_size_2 {s2}")  # type: ignore[operator]
    path, r1, r2 = _path(proof.get("consistency_path")), _hash(proof.get("root_1")), _hash(proof.get("root_2"))
    v.add("consistency", ints and path is not None and r1 is not None and r2 is not None
          and verify_consistency_path(s1, s2, path, r1, r2),  # type: ignore[arg-type]
          "consistency_path does not join root_1 and root_2 (RFC 9162 §2.1.4.2)")
    for n, size, root in (("1", s1, r1), ("2", s2, r2)):
        anchor = proof.get(f"anchor_{n}") if isinstance(proof.get(f"anchor_{n}"), dict) else {}
        _check_anchor(v, chain, trusted, chain_id, (f"root_{n}_on_chain", f"anchor_{n}_tx", f"anchor_{n}_block"), anchor,
                      size if isinstance(size, int) else 0, root)
    return v


def verify_proof(proof: Mapping[str, Any], rpc_url: str, contract: str, chain_id: int) -> Verification:
    """Check an inclusion or a consistency proof (told apart by
    ``audit_path`` / ``consistency_path``) against the chain at
    ``rpc_url``, trusting ``contract`` on chain ``chain_id``. Raises
    ValueError for a document that is neither, RpcError as above."""
    chain = Chain(rpc_url)
    if "consistency_path" in proof:
        return verify_consistency(proof, chain, contract, chain_id)
    if "audit_path" in proof:
        return verify_inclusion(proof, chain, contract, chain_id)
    raise ValueError("the document has neither audit_path nor consistency_path: not a RenderTrust proof")


def main(argv: Optional[Sequence[str]] = None) -> int:
    """The command line: ``python -m rendertrust.verify proof.json --rpc URL
    --contract ADDR --chain-id N [--json]``. Exits 0 when verified, 1 when a
    check failed, 2 when the proof could not be read or the chain asked."""
    parser = argparse.ArgumentParser(
        prog="python -m rendertrust.verify",
        description="Verify a RenderTrust inclusion or consistency proof against the chain, "
                    "trusting only the contract and chain id you give (the operator's published ones).")
    parser.add_argument("proof", help="the proof document (JSON), or - for standard input")
    parser.add_argument("--rpc", required=True, help="a JSON-RPC endpoint of the chain (your own node, ideally)")
    parser.add_argument("--contract", required=True, help="the Anchor contract's address, as the operator publishes it")
    parser.add_argument("--chain-id", required=True, type=int, help="the chain's id, as the operator publishes it")
    parser.add_argument("--json", action="store_true", help="print the result as JSON")
    args = parser.parse_args(argv)
    try:
        if args.proof == "-":
            raw = sys.stdin.buffer.read(PROOF_FILE_BYTES_MAX + 1)
        else:
            with open(args.proof, "rb") as f:
                raw = f.read(PROOF_FILE_BYTES_MAX + 1)
        if len(raw) > PROOF_FILE_BYTES_MAX:
            raise ValueError(f"the proof is larger than {PROOF_FILE_BYTES_MAX} bytes")
        doc = json.loads(raw)
        if not isinstance(doc, dict):
            raise ValueError("the proof is not a JSON object")
        result = verify_proof(doc, args.rpc, args.contract, args.chain_id)
    except (OSError, ValueError, RpcError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result.as_dict(), indent=2) if args.json else result.report())
    return 0 if result.verified else 1


if __name__ == "__main__":
    sys.exit(main())
