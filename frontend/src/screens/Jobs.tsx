import { useCallback, useEffect, useRef, useState, type FormEvent } from 'react';
import { ApiError, type ApiClient, type Job, type JobStatus, type Submitted } from '../api';
import type { Signals } from '../App';
import { errorText, when } from '../format';
import { credits, FALLBACK_JOB_TYPES, loadJobTypes, type JobType } from '../jobtypes';
import { parsePayload } from '../payload';
import { sha256, toHex } from '../proof';

/** How often the list refreshes while any job on it is active (the guide: 5 seconds). */
export const ACTIVE_REFRESH_MS = 5000;
/** How long a saved result's object URL lives (the download has started by then). */
const REVOKE_AFTER_MS = 60_000;
/** Jobs per page of the list. */
export const PAGE_SIZE = 20;

const STATUSES: JobStatus[] = ['QUEUED', 'DISPATCHED', 'RUNNING', 'COMPLETED', 'FAILED', 'CANCELLED'];
const ACTIVE: JobStatus[] = ['QUEUED', 'DISPATCHED', 'RUNNING'];
const PRIORITIES = [
  ['low', 'Low'],
  ['normal', 'Normal'],
  ['high', 'High'],
] as const;

export const isActive = (s: JobStatus) => ACTIVE.includes(s);

export function StatusBadge({ status }: { status: JobStatus }) {
  return <span className={`badge status-${status.toLowerCase()}`}>{status}</span>;
}

interface Props {
  client: ApiClient;
  signals: Signals;
  goCredits: () => void;
}

export function Jobs({ client, signals, goCredits }: Props) {
  const [formOpen, setFormOpen] = useState(false);
  const [filter, setFilter] = useState<JobStatus | ''>('');
  const [cursors, setCursors] = useState<string[]>(['']);
  const [page, setPage] = useState<{ jobs: Job[]; next?: string } | null>(null);
  const [error, setError] = useState('');
  const [selected, setSelected] = useState<string | null>(null);
  const [reloads, setReloads] = useState(0);
  const cursor = cursors[cursors.length - 1];

  const load = useCallback(async () => {
    try {
      const p = await client.jobs(filter, cursor || undefined, PAGE_SIZE);
      setPage({ jobs: p.jobs, next: p.next_cursor });
      setError('');
    } catch (e) {
      setError(errorText(e));
    }
  }, [client, filter, cursor]);

  useEffect(() => {
    void load();
  }, [load, reloads, signals.refresh]);

  useEffect(() => {
    if (signals.newJob > 0) setFormOpen(true);
  }, [signals.newJob]);

  const anyActive = !!page?.jobs.some((j) => isActive(j.status));
  useEffect(() => {
    if (!anyActive) return;
    const t = setInterval(() => setReloads((n) => n + 1), ACTIVE_REFRESH_MS);
    return () => clearInterval(t);
  }, [anyActive]);

  const chooseFilter = (f: JobStatus | '') => {
    setFilter(f);
    setCursors(['']);
  };

  return (
    <section aria-labelledby="jobs-title">
      <header className="page-header">
        <h1 id="jobs-title">Jobs</h1>
        <button type="button" className="primary" onClick={() => setFormOpen(true)} aria-keyshortcuts="Control+N Meta+N">
          Submit Job
        </button>
      </header>
      {formOpen && (
        <SubmitJobForm
          client={client}
          onClose={() => setFormOpen(false)}
          onSubmitted={() => setReloads((n) => n + 1)}
          goCredits={goCredits}
          focusKey={signals.newJob}
        />
      )}
      <div className="filters" role="group" aria-label="Filter by status">
        {(['', ...STATUSES] as const).map((s) => (
          <button key={s || 'all'} type="button" aria-pressed={filter === s} onClick={() => chooseFilter(s)}>
            {s || 'All'}
          </button>
        ))}
      </div>
      {error && (
        <p className="alert error" role="alert">
          {error}
        </p>
      )}
      <div className="table-wrap">
        <table className="jobs">
          <thead>
            <tr>
              <th scope="col">Job</th>
              <th scope="col">Type</th>
              <th scope="col">Status</th>
              <th scope="col">Node</th>
              <th scope="col">Cost</th>
              <th scope="col">Submitted</th>
            </tr>
          </thead>
          <tbody>
            {page?.jobs.map((j) => (
              <tr
                key={j.id}
                data-job={j.id}
                tabIndex={0}
                className={selected === j.id ? 'selected' : ''}
                onClick={() => setSelected(j.id)}
                onKeyDown={(e) => {
                  if (e.key === 'Enter' || e.key === ' ') {
                    e.preventDefault();
                    setSelected(j.id);
                  }
                }}
              >
                <td className="mono">{j.id.slice(0, 8)}…</td>
                <td>{j.job_type}</td>
                <td>
                  <StatusBadge status={j.status} />
                </td>
                <td className="mono">{j.node_id ? j.node_id.slice(0, 8) + '…' : 'queued'}</td>
                <td>{j.cost}</td>
                <td>{when(j.submitted_at)}</td>
              </tr>
            ))}
          </tbody>
        </table>
        {page && page.jobs.length === 0 && <p className="empty">No jobs{filter ? ` with status ${filter}` : ''} yet.</p>}
      </div>
      <div className="pager">
        <button type="button" disabled={cursors.length === 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
          Previous
        </button>
        <span>Page {cursors.length}</span>
        <button type="button" disabled={!page?.next} onClick={() => page?.next && setCursors((c) => [...c, page.next!])}>
          Next
        </button>
        {anyActive && <span className="muted">Active jobs refresh every 5 seconds.</span>}
      </div>
      {selected && (
        <JobDetail
          client={client}
          id={selected}
          tick={reloads + signals.refresh}
          onClose={() => setSelected(null)}
          onChanged={() => setReloads((n) => n + 1)}
        />
      )}
    </section>
  );
}

interface FormProps {
  client: ApiClient;
  onClose: () => void;
  onSubmitted: (s: Submitted) => void;
  goCredits: () => void;
  focusKey: number;
}

type Outcome =
  | { kind: 'ok'; s: Submitted }
  | { kind: 'credits'; message: string }
  | { kind: 'nodes'; message: string }
  | { kind: 'error'; message: string };

function SubmitJobForm({ client, onClose, onSubmitted, goCredits, focusKey }: FormProps) {
  const [types, setTypes] = useState<JobType[]>(FALLBACK_JOB_TYPES);
  const [jobType, setJobType] = useState('render');
  const [payload, setPayload] = useState('');
  const [priority, setPriority] = useState('normal');
  const [gpu, setGpu] = useState(false);
  const [fieldError, setFieldError] = useState('');
  const [outcome, setOutcome] = useState<Outcome | null>(null);
  const [busy, setBusy] = useState(false);
  // One key per submission: a double click or a retry of the same form sends
  // the same key, so the server creates the job once.
  const key = useRef(client.newKey());
  const inFlight = useRef(false);
  const first = useRef<HTMLSelectElement>(null);

  useEffect(() => {
    void loadJobTypes(() => client.request('GET', '/jobs/types')).then(setTypes);
  }, [client]);
  useEffect(() => first.current?.focus(), [focusKey]);

  const edited = () => {
    key.current = client.newKey(); // a changed form is a new submission
    setOutcome(null);
  };

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (inFlight.current) return;
    const p = parsePayload(payload);
    if (!p.ok) {
      setFieldError(p.error);
      return;
    }
    setFieldError('');
    inFlight.current = true;
    setBusy(true);
    try {
      const s = await client.submitJob({ job_type: jobType, ...p.body, priority, gpu_required: gpu }, key.current);
      setOutcome({ kind: 'ok', s });
      key.current = client.newKey();
      onSubmitted(s);
    } catch (err) {
      setOutcome(outcomeOf(err));
    } finally {
      inFlight.current = false;
      setBusy(false);
    }
  };

  const cost = types.find((t) => t.type === jobType)?.cost;
  return (
    <form className="card submit-job" onSubmit={submit} aria-labelledby="submit-title">
      <h2 id="submit-title">Submit Job</h2>
      <div className="grid">
        <label>
          Job Type
          <select
            ref={first}
            value={jobType}
            onChange={(e) => {
              setJobType(e.target.value);
              edited();
            }}
          >
            {types.map((t) => (
              <option key={t.type} value={t.type}>
                {t.type} — {t.display_name}, {credits(t.cost)}
              </option>
            ))}
          </select>
        </label>
        <label>
          Priority
          <select
            value={priority}
            onChange={(e) => {
              setPriority(e.target.value);
              edited();
            }}
          >
            {PRIORITIES.map(([v, l]) => (
              <option key={v} value={v}>
                {l}
              </option>
            ))}
          </select>
        </label>
      </div>
      <label>
        Payload
        <textarea
          rows={4}
          value={payload}
          placeholder={'s3://your-bucket/scene.blend, ipfs://… or {"prompt": "…"}'}
          aria-invalid={!!fieldError}
          aria-describedby="payload-help"
          onChange={(e) => {
            setPayload(e.target.value);
            setFieldError('');
            edited();
          }}
        />
      </label>
      <p id="payload-help" className={fieldError ? 'field-error' : 'muted'} role={fieldError ? 'alert' : undefined}>
        {fieldError || 'Enter a reference URI (S3/IPFS) or paste JSON directly.'}
      </p>
      <label className="toggle">
        <input
          type="checkbox"
          role="switch"
          checked={gpu}
          onChange={(e) => {
            setGpu(e.target.checked);
            edited();
          }}
        />
        GPU Required
      </label>
      <p className="muted">
        Cost: {cost === undefined ? 'unknown' : credits(cost)}, held now and deducted when the job completes.
      </p>
      <div className="actions">
        <button type="submit" className="primary" disabled={busy}>
          Submit
        </button>
        <button type="button" onClick={onClose}>
          Close
        </button>
      </div>
      {outcome?.kind === 'ok' && (
        <p className="alert success" role="status">
          Job <span className="mono" data-testid="submitted-job">{outcome.s.job_id}</span>{' '}
          {outcome.s.node_id ? (
            <>
              dispatched to node <span className="mono">{outcome.s.node_id}</span>
            </>
          ) : (
            'queued'
          )}{' '}
          ({outcome.s.status}).
        </p>
      )}
      {outcome?.kind === 'credits' && (
        <div className="alert warning" role="alert">
          <strong>Not enough credits.</strong> {outcome.message} Navigate to Credits and purchase more.{' '}
          <button type="button" className="link" onClick={goCredits}>
            Go to Credits
          </button>
        </div>
      )}
      {outcome?.kind === 'nodes' && (
        <div className="alert error" role="alert">
          <strong>No healthy nodes</strong>: no nodes available for your job type. Try again later or contact support.
        </div>
      )}
      {outcome?.kind === 'error' && (
        <p className="alert error" role="alert">
          {outcome.message}
        </p>
      )}
    </form>
  );
}

function outcomeOf(err: unknown): Outcome {
  if (err instanceof ApiError) {
    if (err.status === 402) return { kind: 'credits', message: err.message };
    if (err.status === 503 && err.code === 'no_healthy_nodes') return { kind: 'nodes', message: err.message };
    if (err.status === 429) return { kind: 'error', message: `Too many requests. Try again in ${err.retryAfter ?? 60} seconds.` };
    return { kind: 'error', message: err.message };
  }
  return { kind: 'error', message: errorText(err) };
}

interface DetailProps {
  client: ApiClient;
  id: string;
  tick: number;
  onClose: () => void;
  onChanged: () => void;
}

function JobDetail({ client, id, tick, onClose, onChanged }: DetailProps) {
  const [job, setJob] = useState<Job | null>(null);
  const [msg, setMsg] = useState<{ ok: boolean; text: string } | null>(null);
  const [busy, setBusy] = useState(false);
  const heading = useRef<HTMLHeadingElement>(null);

  useEffect(() => {
    let live = true;
    client
      .job(id)
      .then((j) => live && setJob(j))
      .catch((e) => live && setMsg({ ok: false, text: errorText(e) }));
    return () => {
      live = false;
    };
  }, [client, id, tick]);
  useEffect(() => heading.current?.focus(), [id]);

  const cancel = async () => {
    setBusy(true);
    try {
      await client.cancelJob(id);
      setJob(await client.job(id));
      setMsg({ ok: true, text: 'Job cancelled; its hold was released.' });
      onChanged();
    } catch (e) {
      setMsg({ ok: false, text: errorText(e) });
    } finally {
      setBusy(false);
    }
  };

  const download = async () => {
    if (!job) return;
    setBusy(true);
    try {
      const link = await client.resultLink(id);
      const body = await client.download(link.download_url);
      const got = toHex(await sha256(new Uint8Array(body)));
      const want = job.result_sha256 || link.result_sha256;
      if (got !== want) {
        setMsg({ ok: false, text: `The download does not match the job's SHA-256 (${got} ≠ ${want}); nothing was saved.` });
        return;
      }
      save(body, `${job.job_type}-${id}.result`);
      setMsg({ ok: true, text: `SHA-256 checked (${got}); saved to your downloads folder.` });
    } catch (e) {
      setMsg({ ok: false, text: errorText(e) });
    } finally {
      setBusy(false);
    }
  };

  return (
    <aside className="card detail" aria-labelledby="detail-title">
      <header className="page-header">
        <h2 id="detail-title" tabIndex={-1} ref={heading}>
          Job <span className="mono">{id}</span>
        </h2>
        <button type="button" onClick={onClose} aria-label="Close job details">
          ×
        </button>
      </header>
      {job && (
        <>
          <dl className="facts">
            <dt>Status</dt>
            <dd>
              <StatusBadge status={job.status} />
            </dd>
            <dt>Type</dt>
            <dd>{job.job_type}</dd>
            <dt>Priority</dt>
            <dd>{job.priority}</dd>
            <dt>GPU Required</dt>
            <dd>{job.gpu_required ? 'yes' : 'no'}</dd>
            <dt>Node</dt>
            <dd className="mono">{job.node_id || 'queued'}</dd>
            <dt>Attempts</dt>
            <dd>{job.attempts}</dd>
            <dt>Errors</dt>
            <dd>{job.last_error || job.cancel_reason || 'none'}</dd>
            <dt>Cost</dt>
            <dd>{job.cost}</dd>
            <dt>Charged</dt>
            <dd>{job.charged}</dd>
            <dt>Refunded</dt>
            <dd>{job.refunded}</dd>
            <dt>Result SHA-256</dt>
            <dd className="mono">{job.result_sha256 || '—'}</dd>
            <dt>Payload</dt>
            <dd className="mono">{job.payload_ref || 'inline JSON'}</dd>
            <dt>Submitted</dt>
            <dd>{when(job.submitted_at)}</dd>
            <dt>Completed</dt>
            <dd>{when(job.completed_at)}</dd>
          </dl>
          {!!job.attempt_history?.length && (
            <div className="table-wrap">
              <table aria-label="Attempts">
                <thead>
                  <tr>
                    <th scope="col">Attempt</th>
                    <th scope="col">Node</th>
                    <th scope="col">Outcome</th>
                    <th scope="col">Error</th>
                    <th scope="col">Dispatched</th>
                  </tr>
                </thead>
                <tbody>
                  {job.attempt_history.map((a) => (
                    <tr key={a.attempt}>
                      <td>{a.attempt}</td>
                      <td className="mono">{a.node_id.slice(0, 8)}…</td>
                      <td>
                        {a.outcome}
                        {a.will_retry && ' (retried)'}
                      </td>
                      <td>{a.error || ''}</td>
                      <td>{when(a.dispatched_at)}</td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </div>
          )}
          <div className="actions">
            {job.cancellable && (
              <button type="button" className="danger" onClick={cancel} disabled={busy}>
                Cancel
              </button>
            )}
            {job.status === 'COMPLETED' && (
              <button type="button" className="primary" onClick={download} disabled={busy}>
                Download Result
              </button>
            )}
          </div>
        </>
      )}
      {msg && (
        <p className={`alert ${msg.ok ? 'success' : 'error'}`} role={msg.ok ? 'status' : 'alert'}>
          {msg.text}
        </p>
      )}
    </aside>
  );
}

/** Saves bytes as a file: the browser's download, or the desktop app's Downloads folder. */
function save(body: ArrayBuffer, name: string) {
  const url = URL.createObjectURL(new Blob([body]));
  const a = document.createElement('a');
  a.href = url;
  a.download = name;
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), REVOKE_AFTER_MS);
}
