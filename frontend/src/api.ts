// The API client: one JSON error shape, automatic token refresh with one
// refresh in flight, Idempotency-Key on writes, Retry-After on 429.

export interface User {
  id: string;
  email: string;
  name: string;
  admin?: boolean;
}

export interface Tokens {
  access_token: string;
  refresh_token: string;
  token_type: string;
  expires_in: number;
  user?: User;
}

export type JobStatus = 'QUEUED' | 'DISPATCHED' | 'RUNNING' | 'COMPLETED' | 'FAILED' | 'CANCELLED';

export interface Job {
  id: string;
  job_type: string;
  status: JobStatus;
  priority: string;
  gpu_required: boolean;
  node_id?: string;
  attempts: number;
  last_error?: string;
  cancel_reason?: string;
  payload_ref?: string;
  cost: number;
  charged: number;
  refunded: number;
  result_sha256?: string;
  result_bytes?: number;
  cancellable: boolean;
  /** Every dispatch, first first (servers that record them). */
  attempt_history?: Attempt[];
  submitted_at: string;
  completed_at?: string;
  updated_at: string;
}

export interface Attempt {
  attempt: number;
  node_id: string;
  outcome: string;
  error?: string;
  will_retry: boolean;
  dispatched_at: string;
  ended_at?: string;
}

export interface JobPage {
  jobs: Job[];
  next_cursor?: string;
}

export interface Submitted {
  job_id: string;
  node_id?: string;
  status: JobStatus;
  cost: number;
}

export interface Balance {
  balance: number;
  held: number;
  available: number;
}

export interface Transaction {
  entry_id: string;
  type: string;
  amount: number;
  job_id?: string;
  time: string;
  reason?: string;
  dev?: boolean;
  position: number;
  anchored: boolean;
}

export interface TransactionPage {
  transactions: Transaction[];
  next_cursor?: string;
}

export interface Usage {
  time_zone: string;
  days: { date: string; credits: number }[];
  total: number;
}

export interface CreditPackage {
  id: string;
  name: string;
  credits: number;
  price_cents: number;
  currency: string;
}

export interface Checkout {
  checkout_url: string;
  session_id: string;
  purchase_id: string;
  dev: boolean;
}

export interface ResultLink {
  download_url: string;
  expires_in: number;
  result_sha256: string;
  result_bytes: number;
}

export interface ChainInfo {
  chain_id: number;
  contract: string;
  rpc_url?: string;
}

/** An error answer of the API: `{"error": {"code", "message"}}`. */
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;
  /** Seconds to wait, from Retry-After (429, 409 not anchored). */
  readonly retryAfter?: number;

  constructor(status: number, code: string, message: string, retryAfter?: number) {
    super(message);
    this.name = 'ApiError';
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

/** Where the refresh token is kept: sessionStorage in a browser, safeStorage in the desktop app. */
export interface TokenStore {
  load(): Promise<string | null>;
  save(refreshToken: string | null): Promise<void>;
}

export interface ClientOptions {
  baseUrl: string;
  store: TokenStore;
  fetch?: typeof fetch;
  /** Called when the session ends: logout, or a refresh the server refused. */
  onLoggedOut?: () => void;
  /** A fresh Idempotency-Key (crypto.randomUUID by default). */
  newKey?: () => string;
}

interface RequestOptions {
  body?: unknown;
  idempotencyKey?: string;
  auth?: boolean;
}

/** Parses Retry-After (seconds or an HTTP date) into whole seconds. */
export function parseRetryAfter(v: string | null, now = Date.now()): number | undefined {
  if (!v) return undefined;
  if (/^\d+$/.test(v.trim())) return Number(v.trim());
  const t = Date.parse(v);
  return Number.isNaN(t) ? undefined : Math.max(0, Math.ceil((t - now) / 1000));
}

export class ApiClient {
  readonly baseUrl: string;
  private readonly store: TokenStore;
  private readonly fetchFn: typeof fetch;
  private readonly onLoggedOut?: () => void;
  readonly newKey: () => string;
  private access: string | null = null;
  private refreshToken: string | null = null;
  /** The refresh in flight: every caller that needs one waits for this one. */
  private refreshing: Promise<void> | null = null;

  constructor(o: ClientOptions) {
    this.baseUrl = o.baseUrl.replace(/\/+$/, '');
    this.store = o.store;
    this.fetchFn = o.fetch ?? ((input, init) => fetch(input, init));
    this.onLoggedOut = o.onLoggedOut;
    this.newKey = o.newKey ?? (() => crypto.randomUUID());
  }

  get loggedIn(): boolean {
    return this.access !== null || this.refreshToken !== null;
  }

  /** Resumes a saved session: true when a refresh token was stored and still works. */
  async resume(): Promise<boolean> {
    this.refreshToken = await this.store.load();
    if (!this.refreshToken) return false;
    try {
      await this.refresh();
      return true;
    } catch {
      return false;
    }
  }

  async register(email: string, name: string, password: string): Promise<User | undefined> {
    const t = await this.request<Tokens>('POST', '/auth/register', { body: { email, name, password }, auth: false });
    await this.setTokens(t);
    return t.user;
  }

  async login(email: string, password: string): Promise<User | undefined> {
    const t = await this.request<Tokens>('POST', '/auth/login', { body: { email, password }, auth: false });
    await this.setTokens(t);
    return t.user;
  }

  async logout(): Promise<void> {
    const rt = this.refreshToken;
    this.access = null;
    this.refreshToken = null;
    await this.store.save(null);
    if (rt) {
      await this.request('POST', '/auth/logout', { body: { refresh_token: rt }, auth: false }).catch(() => undefined);
    }
    this.onLoggedOut?.();
  }

  me = () => this.request<User>('GET', '/me');
  jobs = (status: string, cursor?: string, limit = 20) =>
    this.request<JobPage>('GET', `/jobs?${query({ status, cursor, limit })}`);
  job = (id: string) => this.request<Job>('GET', `/jobs/${encodeURIComponent(id)}`);
  submitJob = (body: Record<string, unknown>, idempotencyKey: string) =>
    this.request<Submitted>('POST', '/jobs/dispatch', { body, idempotencyKey });
  cancelJob = (id: string) =>
    this.request<{ job_id: string; status: JobStatus }>('POST', `/jobs/${encodeURIComponent(id)}/cancel`, {
      body: {},
      idempotencyKey: this.newKey(),
    });
  resultLink = (id: string) => this.request<ResultLink>('GET', `/jobs/${encodeURIComponent(id)}/result`);
  balance = () => this.request<Balance>('GET', '/credits/balance');
  transactions = (cursor?: string, limit = 20) =>
    this.request<TransactionPage>('GET', `/credits/transactions?${query({ cursor, limit })}`);
  usage = (tz: string) => this.request<Usage>('GET', `/credits/usage?${query({ days: 7, tz })}`);
  packages = () => this.request<{ packages: CreditPackage[] }>('GET', '/credits/packages', { auth: false });
  checkout = (packageId: string, idempotencyKey: string) =>
    this.request<Checkout>('POST', '/credits/checkout', { body: { package_id: packageId }, idempotencyKey });
  proof = (entryId: string) => this.request<unknown>('GET', `/ledger/${encodeURIComponent(entryId)}/proof`);
  serverVerify = (entryId: string) =>
    this.request<{ verified: boolean }>('GET', `/ledger/${encodeURIComponent(entryId)}/verify`);
  chain = () => this.request<ChainInfo>('GET', '/ledger/chain', { auth: false });

  /** Fetches a result by its (token-free) download link. */
  async download(url: string): Promise<ArrayBuffer> {
    const res = await this.fetchFn(url);
    if (!res.ok) throw await errorOf(res);
    return res.arrayBuffer();
  }

  /** One API call; a 401 refreshes the tokens once and retries. */
  async request<T>(method: string, path: string, o: RequestOptions = {}): Promise<T> {
    const auth = o.auth ?? true;
    if (auth && this.access === null && this.refreshToken !== null) await this.refresh();
    let res = await this.send(method, path, o, auth);
    if (res.status === 401 && auth && this.refreshToken !== null) {
      await this.refresh();
      res = await this.send(method, path, o, auth);
    }
    if (!res.ok) throw await errorOf(res);
    if (res.status === 204) return undefined as T;
    return (await res.json()) as T;
  }

  private send(method: string, path: string, o: RequestOptions, auth: boolean): Promise<Response> {
    const headers: Record<string, string> = { Accept: 'application/json' };
    if (o.body !== undefined) headers['Content-Type'] = 'application/json';
    if (o.idempotencyKey) headers['Idempotency-Key'] = o.idempotencyKey;
    if (auth && this.access) headers.Authorization = `Bearer ${this.access}`;
    return this.fetchFn(`${this.baseUrl}/api/v1${path}`, {
      method,
      headers,
      body: o.body === undefined ? undefined : JSON.stringify(o.body),
    });
  }

  /**
   * Exchanges the refresh token for new tokens. Refresh tokens rotate and
   * reusing a rotated one revokes the whole family, so concurrent callers
   * share the one refresh in flight instead of each sending the same token.
   */
  refresh(): Promise<void> {
    if (!this.refreshing) {
      this.refreshing = this.doRefresh().finally(() => {
        this.refreshing = null;
      });
    }
    return this.refreshing;
  }

  private async doRefresh(): Promise<void> {
    const rt = this.refreshToken;
    if (!rt) throw new ApiError(401, 'unauthorized', 'Not logged in');
    const res = await this.send('POST', '/auth/refresh', { body: { refresh_token: rt } }, false);
    if (!res.ok) {
      const err = await errorOf(res);
      if (res.status === 401 || res.status === 403) {
        this.access = null;
        this.refreshToken = null;
        await this.store.save(null);
        this.onLoggedOut?.();
      }
      throw err;
    }
    await this.setTokens((await res.json()) as Tokens);
  }

  private async setTokens(t: Tokens): Promise<void> {
    this.access = t.access_token;
    this.refreshToken = t.refresh_token;
    await this.store.save(t.refresh_token);
  }
}

function query(q: Record<string, string | number | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== '') p.set(k, String(v));
  return p.toString();
}

async function errorOf(res: Response): Promise<ApiError> {
  const retryAfter = parseRetryAfter(res.headers.get('Retry-After'));
  try {
    const body = (await res.json()) as { error?: { code?: string; message?: string } };
    if (body.error) return new ApiError(res.status, body.error.code ?? 'error', body.error.message ?? res.statusText, retryAfter);
  } catch {
    // not JSON: fall through
  }
  return new ApiError(res.status, 'http_' + res.status, res.statusText || `HTTP ${res.status}`, retryAfter);
}

/** Stores the refresh token for this browser tab only. */
export const sessionTokenStore: TokenStore = {
  async load() {
    return sessionStorage.getItem('rendertrust.refresh');
  },
  async save(t) {
    if (t) sessionStorage.setItem('rendertrust.refresh', t);
    else sessionStorage.removeItem('rendertrust.refresh');
  },
};
