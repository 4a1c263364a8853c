import { describe, expect, it } from 'vitest';
import devProof from './testdata/proof-dev.json';
import { allPassed, ANCHORED_TOPIC, checkProof, fromHex, leafHash, rootAtCall, rootFromPath, sha256, toHex, type Proof } from './proof';

// An independent RFC 9162 reference: MTH and PATH by their recursive
// definitions (§2.1.1, §2.1.3.1), to check the iterative fold against.
const enc = (s: string) => new TextEncoder().encode(s);
const largestPow2Below = (n: number) => {
  let k = 1;
  while (k * 2 < n) k *= 2;
  return k;
};
async function mth(leaves: Uint8Array[]): Promise<Uint8Array> {
  if (leaves.length === 1) return leafHash(leaves[0]);
  const k = largestPow2Below(leaves.length);
  return sha256(new Uint8Array([1]), await mth(leaves.slice(0, k)), await mth(leaves.slice(k)));
}
async function path(m: number, leaves: Uint8Array[]): Promise<Uint8Array[]> {
  if (leaves.length === 1) return [];
  const k = largestPow2Below(leaves.length);
  return m < k
    ? [...(await path(m, leaves.slice(0, k))), await mth(leaves.slice(k))]
    : [...(await path(m - k, leaves.slice(k))), await mth(leaves.slice(0, k))];
}

describe('rootFromPath', () => {
  it('folds every audit path of trees of 1 to 33 leaves to the tree head', async () => {
    for (let n = 1; n <= 33; n++) {
      const leaves = Array.from({ length: n }, (_, i) => enc(`leaf ${i}`));
      const root = toHex(await mth(leaves));
      for (let m = 0; m < n; m++) {
        const got = await rootFromPath(m, n, await leafHash(leaves[m]), await path(m, leaves));
        expect(got && toHex(got), `n=${n} m=${m}`).toBe(root);
      }
    }
  });

  it('rejects a path that is too long, too short, or for another index', async () => {
    const leaves = Array.from({ length: 6 }, (_, i) => enc(`leaf ${i}`));
    const root = toHex(await mth(leaves));
    const p = await path(2, leaves);
    const leaf = await leafHash(leaves[2]);
    expect(await rootFromPath(2, 6, leaf, [...p, p[0]])).toBeNull();
    expect(await rootFromPath(2, 6, leaf, p.slice(1))).toBeNull();
    const other = await rootFromPath(3, 6, leaf, p);
    expect(other && toHex(other)).not.toBe(root);
    expect(await rootFromPath(6, 6, leaf, p)).toBeNull();
  });
});

/** A JSON-RPC endpoint answering like the dev chain did when the fixture was taken. */
function chainDouble(p: Proof, opts: { root?: string; chainId?: number } = {}) {
  const calls: { method: string; params: unknown[] }[] = [];
  const f = (async (_url: string, init?: RequestInit) => {
    const { method, params } = JSON.parse(String(init?.body)) as { method: string; params: unknown[] };
    calls.push({ method, params });
    const result = {
      eth_chainId: '0x' + (opts.chainId ?? p.anchor.chain_id).toString(16),
      eth_call: '0x' + (opts.root ?? p.root),
      eth_getTransactionReceipt: {
        status: '0x1',
        blockNumber: '0x' + p.anchor.block_number.toString(16),
        blockHash: p.anchor.block_hash,
        logs: [
          {
            address: p.anchor.contract,
            topics: [ANCHORED_TOPIC, '0x' + p.tree_size.toString(16).padStart(64, '0')],
            data: '0x' + p.root,
          },
        ],
      },
    }[method];
    return new Response(JSON.stringify({ jsonrpc: '2.0', id: 1, result }));
  }) as typeof fetch;
  return { f, calls };
}

describe('checkProof', () => {
  const proof = devProof as Proof;

  it('passes a real proof from the dev server, reading rootAt(tree_size) from the trusted contract', async () => {
    const chain = chainDouble(proof);
    const trusted = '0x9ced666A1C958173E6c43e6A0Bb250A81F711268';
    const checks = await checkProof(proof, { rpcUrl: 'http://chain', contract: trusted, contractSource: 'server', chainId: 1337, fetch: chain.f });
    expect(checks.map((c) => [c.name, c.ok])).toEqual([
      ['leaf_hash', true],
      ['entry_id', true],
      ['inclusion', true],
      ['contract', true],
      ['chain_id', true],
      ['root_on_chain', true],
      ['anchor_tx', true],
    ]);
    expect(allPassed(checks)).toBe(true);
    const call = chain.calls.find((c) => c.method === 'eth_call')!;
    expect(call.params[0]).toEqual({ to: trusted, data: rootAtCall(proof.tree_size) });
    expect(rootAtCall(2)).toBe('0xeaa38b41' + '0'.repeat(63) + '2');
  });

  it('fails a tampered entry at the leaf hash and the inclusion', async () => {
    const bytes = atob(proof.entry).replace('"credits":100', '"credits":900');
    const tampered = { ...proof, entry: btoa(bytes) };
    const checks = await checkProof(tampered, { rpcUrl: 'http://chain', fetch: chainDouble(proof).f });
    expect(checks.find((c) => c.name === 'leaf_hash')!.ok).toBe(false);
    expect(checks.find((c) => c.name === 'inclusion')!.ok).toBe(false);
    expect(checks.find((c) => c.name === 'root_on_chain')!.ok).toBe(false);
    expect(allPassed(checks)).toBe(false);
  });

  it('fails a consistent forgery whose root the chain does not hold', async () => {
    // Everything in the proof agrees with itself, but the chain holds another root.
    const checks = await checkProof(proof, { rpcUrl: 'http://chain', fetch: chainDouble(proof, { root: 'ab'.repeat(32) }).f });
    expect(checks.find((c) => c.name === 'inclusion')!.ok).toBe(true);
    expect(checks.find((c) => c.name === 'root_on_chain')!.ok).toBe(false);
  });

  it('flags a proof naming another contract than the trusted one', async () => {
    const checks = await checkProof(proof, {
      rpcUrl: 'http://chain',
      contract: '0x' + '11'.repeat(20),
      fetch: chainDouble(proof).f,
    });
    expect(checks.find((c) => c.name === 'contract')!.ok).toBe(false);
    expect(checks.find((c) => c.name === 'anchor_tx')!.ok).toBe(false); // the Anchored log came from another address
  });

  it('fails the chain id of another chain', async () => {
    const checks = await checkProof(proof, { rpcUrl: 'http://chain', fetch: chainDouble(proof, { chainId: 1 }).f });
    expect(checks.find((c) => c.name === 'chain_id')!.ok).toBe(false);
  });

  it('says the chain checks were not run without an endpoint, and is not "passed"', async () => {
    const checks = await checkProof(proof, {});
    expect(checks.filter((c) => c.ok === null).map((c) => c.name)).toEqual(['contract', 'chain_id', 'root_on_chain', 'anchor_tx']);
    expect(allPassed(checks)).toBe(false);
  });

  it('hex round-trips and rejects non-hex', () => {
    expect(toHex(fromHex('00ff10'))).toBe('00ff10');
    expect(() => fromHex('zz')).toThrow();
  });
});
