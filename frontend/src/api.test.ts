import { describe, expect, it } from 'vitest';
import { ApiClient, ApiError, parseRetryAfter, type TokenStore } from './api';
import { loginError } from './screens/Login';
import { parsePayload } from './payload';

/**
 * A model of the server's token rules: refresh tokens rotate, and presenting
 * a rotated one again revokes the whole family (every token of the login).
 */
class TokenServer {
  private n = 0;
  access = new Set<string>();
  live = new Set<string>();
  used = new Set<string>();
  refreshCalls = 0;
  revoked = false;
  requests: { path: string; headers: Record<string, string> }[] = [];

  issue() {
    this.n++;
    const t = { access_token: `at${this.n}`, refresh_token: `rt${this.n}`, token_type: 'Bearer', expires_in: 900 };
    this.access.add(t.access_token);
    this.live.add(t.refresh_token);
    return t;
  }

  expireAccess() {
    this.access.clear();
  }

  fetch = (async (url: string, init: RequestInit = {}) => {
    const path = new URL(url).pathname.replace('/api/v1', '');
    const headers = (init.headers ?? {}) as Record<string, string>;
    this.requests.push({ path, headers });
    await Promise.resolve(); // answer asynchronously, as a network would
    const json = (status: number, body: unknown, extra: Record<string, string> = {}) =>
      new Response(JSON.stringify(body), { status, headers: { 'Content-Type': 'application/json', ...extra } });
    if (path === '/auth/login') return json(200, this.issue());
    if (path === '/auth/refresh') {
      this.refreshCalls++;
      const rt = (JSON.parse(String(init.body)) as { refresh_token: string }).refresh_token;
      if (this.used.has(rt)) {
        this.revoked = true; // reuse: revoke the family
        this.live.clear();
        this.access.clear();
      }
      if (this.revoked || !this.live.has(rt)) return json(401, { error: { code: 'unauthorized', message: 'invalid refresh token' } });
      this.live.delete(rt);
      this.used.add(rt);
      return json(200, this.issue());
    }
    if (path === '/auth/logout') return new Response(null, { status: 204 });
    const bearer = (headers.Authorization ?? '').replace('Bearer ', '');
    if (!this.access.has(bearer)) return json(401, { error: { code: 'unauthorized', message: 'expired' } });
    if (path === '/credits/balance') return json(200, { balance: 100, held: 0, available: 100 });
    if (path === '/jobs/dispatch') return json(402, { error: { code: 'insufficient_credits', message: 'insufficient credits' } });
    if (path === '/me') return json(429, { error: { code: 'rate_limited', message: 'slow down' } }, { 'Retry-After': '42' });
    return json(404, { error: { code: 'not_found', message: 'Not Found' } });
  }) as typeof fetch;
}

function memoryStore(): TokenStore & { value: string | null } {
  return {
    value: null,
    async load() {
      return this.value;
    },
    async save(t) {
      this.value = t;
    },
  };
}

function setup() {
  const server = new TokenServer();
  const store = memoryStore();
  let loggedOut = 0;
  const client = new ApiClient({ baseUrl: 'http://api.test/', store, fetch: server.fetch, onLoggedOut: () => loggedOut++ });
  return { server, store, client, loggedOut: () => loggedOut };
}

describe('token refresh', () => {
  it('refreshes once for many concurrent expired requests, so a rotated token is never reused', async () => {
    const { server, store, client } = setup();
    await client.login('a@example.com', 'password1');
    expect(store.value).toBe('rt1');
    server.expireAccess();
    const all = await Promise.all(Array.from({ length: 8 }, () => client.balance()));
    expect(all.every((b) => b.available === 100)).toBe(true);
    expect(server.refreshCalls).toBe(1);
    expect(server.revoked).toBe(false);
    expect(store.value).toBe('rt2'); // the rotated token is what is kept
  });

  it('keeps working over several expiries, each with one refresh', async () => {
    const { server, client } = setup();
    await client.login('a@example.com', 'password1');
    for (let i = 0; i < 3; i++) {
      server.expireAccess();
      await Promise.all([client.balance(), client.balance()]);
    }
    expect(server.refreshCalls).toBe(3);
    expect(server.revoked).toBe(false);
  });

  it('a refused refresh ends the session: tokens dropped, store cleared, onLoggedOut called', async () => {
    const { server, store, client, loggedOut } = setup();
    await client.login('a@example.com', 'password1');
    server.live.clear(); // e.g. the family was revoked elsewhere
    server.expireAccess();
    await expect(client.balance()).rejects.toMatchObject({ status: 401 });
    expect(store.value).toBeNull();
    expect(client.loggedIn).toBe(false);
    expect(loggedOut()).toBe(1);
  });

  it('resumes a stored session by refreshing it', async () => {
    const { server, store, client } = setup();
    server.issue(); // rt1 exists on the server
    store.value = 'rt1';
    expect(await client.resume()).toBe(true);
    expect(store.value).toBe('rt2');
    expect(await client.balance()).toEqual({ balance: 100, held: 0, available: 100 });
  });

  it('logout forgets the tokens and tells the server', async () => {
    const { server, store, client, loggedOut } = setup();
    await client.login('a@example.com', 'password1');
    await client.logout();
    expect(store.value).toBeNull();
    expect(server.requests.at(-1)!.path).toBe('/auth/logout');
    expect(loggedOut()).toBe(1);
  });
});

describe('errors and headers', () => {
  it('turns the JSON error shape into an ApiError with its code', async () => {
    const { client } = setup();
    await client.login('a@example.com', 'password1');
    const err = await client.submitJob({ job_type: 'render', payload_ref: 's3://b/k' }, 'key-1').catch((e) => e);
    expect(err).toBeInstanceOf(ApiError);
    expect(err).toMatchObject({ status: 402, code: 'insufficient_credits' });
  });

  it('sends the Idempotency-Key given for a submission', async () => {
    const { server, client } = setup();
    await client.login('a@example.com', 'password1');
    await client.submitJob({ job_type: 'echo', payload: {} }, 'key-7').catch(() => undefined);
    expect(server.requests.at(-1)!.headers['Idempotency-Key']).toBe('key-7');
  });

  it('reads Retry-After on 429 and the login screen shows the wait', async () => {
    const { client } = setup();
    await client.login('a@example.com', 'password1');
    const err = await client.me().catch((e) => e);
    expect(err).toMatchObject({ status: 429, retryAfter: 42 });
    expect(loginError(err)).toBe('Too many attempts. Try again in 42 seconds.');
  });

  it('parses Retry-After as seconds or an HTTP date', () => {
    expect(parseRetryAfter('7')).toBe(7);
    expect(parseRetryAfter(new Date(Date.UTC(2026, 0, 1, 0, 0, 30)).toUTCString(), Date.UTC(2026, 0, 1))).toBe(30);
    expect(parseRetryAfter(null)).toBeUndefined();
  });
});

describe('payload field', () => {
  it('sends a URI as payload_ref and JSON as payload', () => {
    expect(parsePayload(' s3://bucket/scene.blend ')).toEqual({ ok: true, body: { payload_ref: 's3://bucket/scene.blend' } });
    expect(parsePayload('ipfs://bafy/frame.exr')).toMatchObject({ ok: true });
    expect(parsePayload('{"prompt": "a cat"}')).toEqual({ ok: true, body: { payload: { prompt: 'a cat' } } });
  });

  it('rejects what the server would refuse before sending it', () => {
    for (const bad of ['', '{"a":', 'ftp://host/x', 's3://', 'not a uri', 'https://user:pw@host/x', 's3://b/' + 'k'.repeat(3000)]) {
      expect(parsePayload(bad).ok, bad).toBe(false);
    }
  });
});

describe('job types', () => {
  it("uses the server's GET /jobs/types and falls back to the table without it", async () => {
    const { loadJobTypes, FALLBACK_JOB_TYPES } = await import('./jobtypes');
    const served = await loadJobTypes(async () => ({ job_types: [{ job_type: 'render', display_name: 'Render', cost: 12 }] }));
    expect(served).toEqual([{ type: 'render', display_name: 'Render', cost: 12 }]);
    expect(await loadJobTypes(async () => Promise.reject(new ApiError(404, 'not_found', 'Not Found')))).toBe(FALLBACK_JOB_TYPES);
    expect(FALLBACK_JOB_TYPES.map((t) => [t.type, t.cost])).toEqual([
      ['render', 10],
      ['inference', 5],
      ['generic', 1],
      ['cpu_benchmark', 1],
      ['echo', 0],
    ]);
  });
});
