"""A JSON-RPC endpoint that answers from a proof vector's recorded chain
(``chain`` in anchor/proof/testdata/vectors/*.json), so the verifier's
real JSON-RPC code runs against each vector."""

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Dict, Iterator
from contextlib import contextmanager

ROOT_AT_SELECTOR = "eaa38b41"


def answer(chain: Dict[str, Any], method: str, params: list) -> Any:
    if method == "eth_chainId":
        return hex(chain["chain_id"])
    if method == "eth_call":
        call = params[0]
        roots = chain["roots"].get(call["to"].lower())
        if roots is None:
            return "0x"  # no code at the address
        data = call["data"][2:]
        assert data[:8] == ROOT_AT_SELECTOR, data
        size = int(data[8:], 16)
        return roots.get(str(size), "0x" + "00" * 32)
    if method == "eth_getTransactionReceipt":
        return chain["receipts"].get(params[0])
    if method == "eth_getBlockByNumber":
        h = chain["blocks"].get(str(int(params[0], 16)))
        return {"hash": h, "number": params[0]} if h else None
    raise KeyError(method)


@contextmanager
def serve(chain: Dict[str, Any]) -> Iterator[str]:
    """Serve chain on a loopback port; yields the endpoint's URL."""

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            req = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
            try:
                body = {"jsonrpc": "2.0", "id": req["id"], "result": answer(chain, req["method"], req["params"])}
            except KeyError as e:
                body = {"jsonrpc": "2.0", "id": req["id"], "error": {"code": -32601, "message": f"no method {e}"}}
            raw = json.dumps(body).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
