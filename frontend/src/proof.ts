// The in-app proof check (anchor/AUDITORS.md): the leaf hash and the RFC 9162
// audit path are recomputed here with WebCrypto's SHA-256, and the anchored
// root is read from the chain's JSON-RPC, so the creator need not trust the
// server's own `verified: true`.

export interface Proof {
  alg: string;
  entry_id: string;
  position: number;
  leaf_index: number;
  entry: string;
  leaf_hash: string;
  tree_size: number;
  audit_path: string[];
  root: string;
  anchor: { chain_id: number; contract: string; tx_hash: string; block_number: number; block_hash: string };
}

export type CheckName =
  | 'leaf_hash'
  | 'entry_id'
  | 'inclusion'
  | 'contract'
  | 'chain_id'
  | 'root_on_chain'
  | 'anchor_tx';

export interface Check {
  name: CheckName;
  label: string;
  /** null: not run (no chain endpoint known). */
  ok: boolean | null;
  detail: string;
}

/** What the check trusts that does not come from the proof itself. */
export interface Trust {
  /** A JSON-RPC endpoint of the chain; without it the chain checks are not run. */
  rpcUrl?: string;
  /** The contract to read roots from; the proof's own is used (and said so) when absent. */
  contract?: string;
  /** Where `contract` came from, for the report ("server /ledger/chain", "your setting"). */
  contractSource?: string;
  chainId?: number;
  fetch?: typeof fetch;
}

/** The selector of `rootAt(uint64)`. */
export const ROOT_AT_SELECTOR = '0xeaa38b41';
/** topics[0] of `Anchored(uint64,bytes32)`. */
export const ANCHORED_TOPIC = '0x4ac5b9bdb01817da80ec1c33e76c5bef927ab969dd8e8ba4ce21da0d7996e56f';

const HEX64 = /^[0-9a-f]{64}$/;

export function toHex(b: ArrayBuffer | Uint8Array): string {
  return Array.from(b instanceof Uint8Array ? b : new Uint8Array(b), (x) => x.toString(16).padStart(2, '0')).join('');
}

export function fromHex(h: string): Uint8Array<ArrayBuffer> {
  if (!/^([0-9a-f]{2})*$/i.test(h)) throw new Error(`not hex: ${h.slice(0, 16)}`);
  const out = new Uint8Array(h.length / 2);
  for (let i = 0; i < out.length; i++) out[i] = parseInt(h.slice(2 * i, 2 * i + 2), 16);
  return out;
}

export async function sha256(...parts: Uint8Array[]): Promise<Uint8Array<ArrayBuffer>> {
  const n = parts.reduce((s, p) => s + p.length, 0);
  const buf = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    buf.set(p, o);
    o += p.length;
  }
  return new Uint8Array(await crypto.subtle.digest('SHA-256', buf));
}

export function base64ToBytes(s: string): Uint8Array<ArrayBuffer> {
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** RFC 9162 leaf hash: SHA-256(0x00 ‖ entry). */
export const leafHash = (entry: Uint8Array) => sha256(new Uint8Array([0]), entry);
const nodeHash = (l: Uint8Array, r: Uint8Array) => sha256(new Uint8Array([1]), l, r);

/**
 * Folds an audit path into the root it proves (RFC 9162 §2.1.3.2); null when
 * the path does not fit the index and size.
 */
export async function rootFromPath(leafIndex: number, treeSize: number, leaf: Uint8Array, path: Uint8Array[]) {
  if (leafIndex < 0 || leafIndex >= treeSize) return null;
  let fn = BigInt(leafIndex);
  let sn = BigInt(treeSize - 1);
  let r = leaf;
  for (const p of path) {
    if (sn === 0n) return null; // path too long
    if ((fn & 1n) === 1n || fn === sn) {
      r = await nodeHash(p, r);
      while ((fn & 1n) === 0n && fn !== 0n) {
        fn >>= 1n;
        sn >>= 1n;
      }
    } else {
      r = await nodeHash(r, p);
    }
    fn >>= 1n;
    sn >>= 1n;
  }
  return sn === 0n ? r : null;
}

async function rpc<T>(f: typeof fetch, url: string, method: string, params: unknown[]): Promise<T> {
  const res = await f(url, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method, params }),
  });
  if (!res.ok) throw new Error(`${method}: HTTP ${res.status}`);
  const body = (await res.json()) as { result?: T; error?: { message: string } };
  if (body.error) throw new Error(`${method}: ${body.error.message}`);
  return body.result as T;
}

/** The calldata of `rootAt(treeSize)`. */
export function rootAtCall(treeSize: number): string {
  return ROOT_AT_SELECTOR + BigInt(treeSize).toString(16).padStart(64, '0');
}

const sameAddress = (a?: string, b?: string) => !!a && !!b && a.toLowerCase() === b.toLowerCase();

/** Runs every check on a proof and reports each one. */
export async function checkProof(p: Proof, trust: Trust = {}): Promise<Check[]> {
  const checks: Check[] = [];
  const add = (name: CheckName, label: string, ok: boolean | null, detail: string) =>
    checks.push({ name, label, ok, detail });

  let leaf: Uint8Array | null = null;
  try {
    const entry = base64ToBytes(p.entry);
    leaf = await leafHash(entry);
    const got = toHex(leaf);
    add('leaf_hash', 'Leaf hash = SHA-256(0x00 ‖ entry bytes)', got === p.leaf_hash, `computed ${got}, proof says ${p.leaf_hash}`);
    let id = '';
    try {
      id = (JSON.parse(new TextDecoder().decode(entry)) as { id?: string }).id ?? '';
    } catch {
      id = '';
    }
    add('entry_id', 'The entry bytes are this entry', id === p.entry_id && p.leaf_index === p.position - 1,
      `entry id ${id || '(none)'}, asked for ${p.entry_id}; leaf ${p.leaf_index} at position ${p.position}`);
  } catch (e) {
    add('leaf_hash', 'Leaf hash = SHA-256(0x00 ‖ entry bytes)', false, `entry is not base64: ${String(e)}`);
  }

  let folded: Uint8Array | null = null;
  if (leaf && p.audit_path.every((h) => HEX64.test(h))) {
    folded = await rootFromPath(p.leaf_index, p.tree_size, leaf, p.audit_path.map(fromHex));
  }
  const foldedHex = folded ? toHex(folded) : '';
  add('inclusion', 'Audit path folds to the root (RFC 9162)', !!folded && foldedHex === p.root,
    folded ? `folded ${foldedHex} over ${p.audit_path.length} hashes, tree size ${p.tree_size}` : 'the audit path does not fit the leaf index and tree size');

  const contract = trust.contract || p.anchor.contract;
  const source = trust.contract ? trust.contractSource || 'your setting' : 'named in the proof only (nothing else to compare with)';
  add('contract', 'Contract read from', trust.contract ? sameAddress(trust.contract, p.anchor.contract) : null,
    `${contract} (${source}); the proof names ${p.anchor.contract}`);

  if (!trust.rpcUrl) {
    const why = 'no chain JSON-RPC URL known: set one under Account';
    add('chain_id', 'Chain id', null, why);
    add('root_on_chain', 'rootAt(tree_size) on chain = folded root', null, why);
    add('anchor_tx', 'Anchoring transaction succeeded and emitted Anchored', null, why);
    return checks;
  }
  const f = trust.fetch ?? ((input, init) => fetch(input, init));
  const url = trust.rpcUrl;
  try {
    const id = Number(BigInt(await rpc<string>(f, url, 'eth_chainId', [])));
    const want = trust.chainId ?? p.anchor.chain_id;
    add('chain_id', 'Chain id', id === want && id === p.anchor.chain_id, `${url} is chain ${id}; expected ${want}, the proof names ${p.anchor.chain_id}`);
  } catch (e) {
    add('chain_id', 'Chain id', false, String(e));
  }
  try {
    const onChain = await rpc<string>(f, url, 'eth_call', [{ to: contract, data: rootAtCall(p.tree_size) }, 'latest']);
    add('root_on_chain', 'rootAt(tree_size) on chain = folded root', !!folded && onChain === '0x' + foldedHex,
      `chain holds ${onChain} for size ${p.tree_size}`);
  } catch (e) {
    add('root_on_chain', 'rootAt(tree_size) on chain = folded root', false, String(e));
  }
  try {
    type Receipt = { status: string; blockNumber: string; blockHash: string; logs: { address: string; topics: string[]; data: string }[] };
    const rc = await rpc<Receipt | null>(f, url, 'eth_getTransactionReceipt', [p.anchor.tx_hash]);
    const sizeTopic = '0x' + BigInt(p.tree_size).toString(16).padStart(64, '0');
    const ok = !!rc && rc.status === '0x1' && Number(BigInt(rc.blockNumber)) === p.anchor.block_number &&
      rc.blockHash === p.anchor.block_hash &&
      rc.logs.some((l) => sameAddress(l.address, contract) && l.topics[0] === ANCHORED_TOPIC &&
        l.topics[1] === sizeTopic && l.data === '0x' + p.root);
    add('anchor_tx', 'Anchoring transaction succeeded and emitted Anchored', ok,
      rc ? `tx ${p.anchor.tx_hash} in block ${Number(BigInt(rc.blockNumber))}` : `no receipt for ${p.anchor.tx_hash}`);
  } catch (e) {
    add('anchor_tx', 'Anchoring transaction succeeded and emitted Anchored', false, String(e));
  }
  return checks;
}

/** A proof passes when every check ran and passed. */
export const allPassed = (checks: Check[]) => checks.every((c) => c.ok === true);
