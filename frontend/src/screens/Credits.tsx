import { useCallback, useEffect, useRef, useState } from 'react';
import {
  BarController,
  BarElement,
  CategoryScale,
  Chart,
  LinearScale,
  Tooltip,
} from 'chart.js';
import type { ApiClient, Balance, CreditPackage, Transaction, Usage } from '../api';
import type { Signals } from '../App';
import { errorText, money, perCredit, timeZone, when } from '../format';

Chart.register(BarController, BarElement, CategoryScale, LinearScale, Tooltip);

/** How long Buy Now waits for the purchase to show (the guide allows 30 seconds). */
export const PURCHASE_WAIT_MS = 30_000;
/** How often the balance is re-read while waiting for a purchase. */
export const PURCHASE_POLL_MS = 1000;
/** Movements that take credits from what the creator can spend. */
const spends = (type: string) => type === 'deduction' || type === 'hold';

/** Transactions per page. */
const TX_PAGE = 20;

interface Props {
  client: ApiClient;
  signals: Signals;
  onVerify: (entryId: string) => void;
}

export function Credits({ client, signals, onVerify }: Props) {
  const [balance, setBalance] = useState<Balance | null>(null);
  const [packages, setPackages] = useState<CreditPackage[]>([]);
  const [usage, setUsage] = useState<Usage | null>(null);
  const [txs, setTxs] = useState<Transaction[]>([]);
  const [txCursors, setTxCursors] = useState<string[]>(['']);
  const [txNext, setTxNext] = useState<string | undefined>();
  const [error, setError] = useState('');
  const [purchase, setPurchase] = useState<{ ok: boolean; text: string } | null>(null);
  const [buying, setBuying] = useState(false);
  const txCursor = txCursors[txCursors.length - 1];

  const load = useCallback(async () => {
    try {
      const [b, p, u, t] = await Promise.all([
        client.balance(),
        client.packages(),
        client.usage(timeZone()),
        client.transactions(txCursor || undefined, TX_PAGE),
      ]);
      setBalance(b);
      setPackages(p.packages);
      setUsage(u);
      setTxs(t.transactions);
      setTxNext(t.next_cursor);
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
  }, [client, txCursor]);

  useEffect(() => {
    void load();
  }, [load, signals.refresh]);

  const buy = async (pkg: CreditPackage) => {
    setBuying(true);
    setPurchase(null);
    try {
      const before = (await client.balance()).balance;
      const c = await client.checkout(pkg.id, client.newKey());
      if (c.dev) {
        setPurchase({ ok: true, text: `Dev payment provider: ${pkg.credits} credits added at once, no charge.` });
      } else {
        window.open(c.checkout_url, '_blank', 'noopener');
        setPurchase({ ok: true, text: 'Complete payment on the Stripe checkout page. Waiting for payment confirmation…' });
      }
      const deadline = Date.now() + PURCHASE_WAIT_MS;
      for (;;) {
        const b = await client.balance();
        setBalance(b);
        if (b.balance >= before + pkg.credits) {
          setPurchase({ ok: true, text: `${pkg.credits} credits are in your balance.${c.dev ? ' (dev payment provider: no charge)' : ''}` });
          break;
        }
        if (Date.now() > deadline) {
          setPurchase({ ok: false, text: 'Credits have not appeared yet. Allow 30 seconds for webhook processing, then refresh (Ctrl/Cmd+R).' });
          break;
        }
        await new Promise((r) => setTimeout(r, PURCHASE_POLL_MS));
      }
      await load();
    } catch (e) {
      setPurchase({ ok: false, text: errorText(e) });
    } finally {
      setBuying(false);
    }
  };

  return (
    <section aria-labelledby="credits-title">
      <header className="page-header">
        <h1 id="credits-title">Credits</h1>
      </header>
      {error && (
        <p className="alert error" role="alert">
          {error}
        </p>
      )}
      <div className="cards">
        <div className="card balance" aria-labelledby="balance-title">
          <h2 id="balance-title">Available Balance</h2>
          <p className="big" data-testid="available">
            {balance ? balance.available.toLocaleString('en-US') : '—'}
          </p>
          <p className="muted">
            credits available · <span data-testid="held">{balance?.held ?? '—'}</span> held for running jobs ·{' '}
            <span data-testid="balance">{balance?.balance ?? '—'}</span> balance
          </p>
        </div>
        <div className="card usage" aria-labelledby="usage-title">
          <h2 id="usage-title">Usage Chart</h2>
          <UsageChart usage={usage} />
        </div>
      </div>
      <div className="card" aria-labelledby="buy-title">
        <h2 id="buy-title">Buy Credits</h2>
        <ul className="packages">
          {packages.map((p) => (
            <li key={p.id} className="package" data-package={p.id}>
              <strong>{p.credits.toLocaleString('en-US')} credits</strong>
              <span>
                {money(p.price_cents, p.currency)} ({perCredit(p.price_cents, p.credits)})
              </span>
              <button type="button" className="primary" disabled={buying} onClick={() => buy(p)}>
                Buy Now
              </button>
            </li>
          ))}
        </ul>
        {purchase && (
          <p className={`alert ${purchase.ok ? 'success' : 'warning'}`} role="status">
            {purchase.text}
          </p>
        )}
      </div>
      <div className="card" aria-labelledby="tx-title">
        <h2 id="tx-title">Transaction History</h2>
        <div className="table-wrap">
          <table className="transactions">
            <thead>
              <tr>
                <th scope="col">Type</th>
                <th scope="col">Amount</th>
                <th scope="col">Time</th>
                <th scope="col">Transaction ID</th>
                <th scope="col">Job</th>
                <th scope="col">Anchored</th>
                <th scope="col">
                  <span className="sr-only">Verify</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {txs.map((t) => (
                <tr key={t.entry_id} data-entry={t.entry_id} data-type={t.type}>
                  <td>
                    <span className={`badge tx-${t.type}`}>{t.type}</span>
                    {t.dev && <span className="muted"> dev</span>}
                  </td>
                  <td className={spends(t.type) ? 'neg' : 'pos'}>
                    {spends(t.type) ? '−' : '+'}
                    {Math.abs(t.amount)}
                  </td>
                  <td>{when(t.time)}</td>
                  <td className="mono entry-id">{t.entry_id}</td>
                  <td className="mono">{t.job_id ? t.job_id.slice(0, 8) + '…' : ''}</td>
                  <td>{t.anchored ? 'yes' : 'not yet'}</td>
                  <td>
                    <button type="button" onClick={() => onVerify(t.entry_id)} aria-label={`Verify ${t.entry_id}`}>
                      Verify
                    </button>
                  </td>
                </tr>
              ))}
            </tbody>
          </table>
          {txs.length === 0 && <p className="empty">No transactions yet.</p>}
        </div>
        <div className="pager">
          <button type="button" disabled={txCursors.length === 1} onClick={() => setTxCursors((c) => c.slice(0, -1))}>
            Previous
          </button>
          <span>Page {txCursors.length}</span>
          <button type="button" disabled={!txNext} onClick={() => txNext && setTxCursors((c) => [...c, txNext])}>
            Next
          </button>
        </div>
      </div>
    </section>
  );
}

/** The 7-day usage chart, in the user's time zone, with the same figures as a table for screen readers. */
function UsageChart({ usage }: { usage: Usage | null }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const chart = useRef<Chart<'bar'> | null>(null);

  useEffect(() => {
    if (!canvas.current || !usage) return;
    const labels = usage.days.map((d) => d.date.slice(5));
    const data = usage.days.map((d) => d.credits);
    if (!chart.current) {
      chart.current = new Chart(canvas.current, {
        type: 'bar',
        data: { labels, datasets: [{ label: 'Credits used', data, backgroundColor: '#4f6bed' }] },
        options: {
          animation: false,
          maintainAspectRatio: false,
          scales: { y: { beginAtZero: true, ticks: { precision: 0 } } },
        },
      });
    } else {
      chart.current.data.labels = labels;
      chart.current.data.datasets[0].data = data;
      chart.current.update();
    }
  }, [usage]);

  useEffect(
    () => () => {
      chart.current?.destroy();
      chart.current = null;
    },
    [],
  );

  return (
    <figure>
      <div className="chart-box">
        <canvas ref={canvas} role="img" aria-label="Credits used per day, last 7 days" />
      </div>
      <figcaption className="muted">
        Last 7 days in {usage?.time_zone ?? timeZone()}: <span data-testid="usage-total">{usage?.total ?? 0}</span> credit{usage?.total === 1 ? '' : 's'}
      </figcaption>
      <div className="sr-only">
      <table data-testid="usage-table">
        <thead>
          <tr>
            <th>Date</th>
            <th>Credits</th>
          </tr>
        </thead>
        <tbody>
          {usage?.days.map((d) => (
            <tr key={d.date}>
              <td>{d.date}</td>
              <td>{d.credits}</td>
            </tr>
          ))}
        </tbody>
      </table>
      </div>
    </figure>
  );
}
