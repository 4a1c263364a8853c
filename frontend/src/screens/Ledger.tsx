import { useCallback, useEffect, useState, type FormEvent } from 'react';
import { ApiError, type ApiClient, type ChainInfo } from '../api';
import type { Signals } from '../App';
import { errorText } from '../format';
import { allPassed, checkProof, type Check, type Proof, type Trust } from '../proof';
import { loadChainSettings } from '../settings';

interface Props {
  client: ApiClient;
  signals: Signals;
  /** An entry to verify at once (the Verify action of Transaction History). */
  entryId: string;
}

interface Result {
  entryId: string;
  checks: Check[];
  rpcUrl: string;
  serverVerified?: boolean;
}

/** Builds the trust inputs: the creator's own settings first, then what the server publishes. */
export function trustFrom(chain: ChainInfo | null): Trust {
  const mine = loadChainSettings();
  return {
    rpcUrl: mine.rpcUrl || chain?.rpc_url || undefined,
    contract: mine.contract || chain?.contract || undefined,
    contractSource: mine.contract ? 'your setting under Account' : chain ? 'published by the server at /api/v1/ledger/chain' : undefined,
    chainId: chain?.chain_id,
  };
}

export function Ledger({ client, signals, entryId }: Props) {
  const [id, setId] = useState(entryId);
  const [chain, setChain] = useState<ChainInfo | null>(null);
  const [result, setResult] = useState<Result | null>(null);
  const [error, setError] = useState('');
  const [busy, setBusy] = useState(false);
  const [pasted, setPasted] = useState('');

  useEffect(() => {
    client
      .chain()
      .then(setChain)
      .catch(() => setChain(null));
  }, [client, signals.refresh]);

  const verify = useCallback(
    async (entry: string) => {
      setBusy(true);
      setError('');
      setResult(null);
      try {
        const chainInfo = await client.chain().catch(() => null);
        const proof = (await client.proof(entry)) as Proof;
        const trust = trustFrom(chainInfo);
        const checks = await checkProof(proof, trust);
        const server = await client.serverVerify(entry).catch(() => undefined);
        setResult({ entryId: entry, checks, rpcUrl: trust.rpcUrl ?? '', serverVerified: server?.verified });
      } catch (e) {
        if (e instanceof ApiError && e.code === 'not_anchored') {
          setError(`Not anchored yet: ${e.message}.${e.retryAfter ? ` Try again in ${e.retryAfter} seconds.` : ''}`);
        } else setError(errorText(e));
      } finally {
        setBusy(false);
      }
    },
    [client],
  );

  useEffect(() => {
    if (entryId) {
      setId(entryId);
      void verify(entryId);
    }
  }, [entryId, verify]);

  const submit = (e: FormEvent) => {
    e.preventDefault();
    if (id.trim()) void verify(id.trim());
  };

  const checkPasted = async (e: FormEvent) => {
    e.preventDefault();
    setError('');
    setResult(null);
    try {
      const proof = JSON.parse(pasted) as Proof;
      const trust = trustFrom(chain);
      setResult({ entryId: proof.entry_id, checks: await checkProof(proof, trust), rpcUrl: trust.rpcUrl ?? '' });
    } catch (err) {
      setError(`Not a proof: ${errorText(err)}`);
    }
  };

  return (
    <section aria-labelledby="ledger-title">
      <header className="page-header">
        <h1 id="ledger-title">Ledger</h1>
      </header>
      <form className="card" onSubmit={submit} aria-label="Verify a ledger entry">
        <p className="muted">
          Every credit transaction is anchored on-chain. Enter a transaction ID: the app fetches its Merkle proof and checks
          it itself (SHA-256 in this app, the audit path to the root, and the root the chain's contract holds).
        </p>
        <label>
          Transaction ID
          <input className="mono" value={id} onChange={(e) => setId(e.target.value)} placeholder="entry id" />
        </label>
        <button type="submit" className="primary" disabled={busy || !id.trim()}>
          Verify
        </button>
      </form>
      {error && (
        <p className="alert warning" role="alert">
          {error}
        </p>
      )}
      {busy && <p aria-busy="true">Checking…</p>}
      {result && <Report result={result} />}
      <details className="card">
        <summary>Check a proof file</summary>
        <form onSubmit={checkPasted}>
          <label>
            Proof JSON (from <span className="mono">GET /api/v1/ledger/ENTRY_ID/proof</span>)
            <textarea rows={6} className="mono" value={pasted} onChange={(e) => setPasted(e.target.value)} />
          </label>
          <button type="submit" disabled={!pasted.trim()}>
            Check proof
          </button>
        </form>
      </details>
    </section>
  );
}

function Report({ result }: { result: Result }) {
  const passed = allPassed(result.checks);
  const failed = result.checks.some((c) => c.ok === false);
  return (
    <div className="card report" aria-live="polite" data-testid="proof-report">
      <h2>
        {passed ? (
          <span className="verdict ok">Verified in this app</span>
        ) : failed ? (
          <span className="verdict fail">Proof check FAILED</span>
        ) : (
          <span className="verdict partial">Partly checked</span>
        )}{' '}
        <span className="mono small">{result.entryId}</span>
      </h2>
      <ul className="checks">
        {result.checks.map((c) => (
          <li key={c.name} data-check={c.name} data-ok={String(c.ok)}>
            <span className={`mark ${c.ok === true ? 'ok' : c.ok === false ? 'fail' : 'skip'}`} aria-hidden="true">
              {c.ok === true ? '✓' : c.ok === false ? '✗' : '–'}
            </span>
            <span className="sr-only">{c.ok === true ? 'passed' : c.ok === false ? 'failed' : 'not run'}:</span>
            <strong>{c.label}</strong>
            <span className="detail mono">{c.detail}</span>
          </li>
        ))}
      </ul>
      <p className="muted">
        Chain endpoint: <span className="mono">{result.rpcUrl || 'none'}</span>.
        {result.serverVerified !== undefined &&
          ` The server's own answer (not relied on above): verified ${String(result.serverVerified)}.`}
      </p>
    </div>
  );
}
