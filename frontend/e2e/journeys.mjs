// Browser journeys of the Creator app, one per section of the creator guide,
// in Debian's Chromium driven by playwright-core, against the real
// `rendertrust serve --dev` on loopback ports with throwaway data dirs.
//
//   node e2e/journeys.mjs            (from frontend/, after `make build`)
//
// Server A runs the built-in local node (echo, cpu_benchmark). Server B runs
// none (--no-local-node); the test enrolls a node through the node API and
// plays it by hand, so every status, a queued job and "No healthy nodes" are
// deterministic. Screenshots go to e2e/screenshots/ (not committed).
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = dirname(fileURLToPath(import.meta.url));
const ROOT = join(HERE, '..', '..');
const BIN = process.env.RENDERTRUST_BIN || join(ROOT, 'bin', 'rendertrust');
const CHROMIUM = process.env.CHROMIUM_PATH || '/usr/bin/chromium';
const SHOTS = join(HERE, 'screenshots');
const PASSWORD = 'correct horse battery';
/** Bounds of the waits (they end as soon as the event happens). */
const READY_TIMEOUT_MS = 120_000;
const EVENT_TIMEOUT_MS = 30_000;
const ANCHOR_TIMEOUT_MS = 90_000;
const DESKTOP = { width: 1280, height: 800 };
const NARROW = { width: 390, height: 844 };
/** The guide's badge colours, as Chromium computes them from styles.css. */
const COLOURS = {
  'status-queued': 'rgb(234, 179, 8)',
  'status-dispatched': 'rgb(37, 99, 235)',
  'status-running': 'rgb(37, 99, 235)',
  'status-completed': 'rgb(22, 163, 74)',
  'status-failed': 'rgb(220, 38, 38)',
  'tx-purchase': 'rgb(22, 163, 74)',
  'tx-deduction': 'rgb(220, 38, 38)',
  'tx-refund': 'rgb(37, 99, 235)',
};

const started = Date.now();
const children = [];
const tmpDirs = [];
let shot = 0;

function log(...a) {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1)}s]`, ...a);
}

function check(ok, what) {
  if (!ok) throw new Error(`check failed: ${what}`);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

async function startServer(name, extra, before) {
  const dir = mkdtempSync(join(tmpdir(), `rendertrust-e2e-${name}-`));
  tmpDirs.push(dir);
  before?.(dir);
  const port = await freePort();
  const args = ['serve', '--dev', '--addr', `127.0.0.1:${port}`, '--data-dir', dir, '--log-level', 'warn',
    '--anchor-interval', '1s', ...extra];
  const child = spawn(BIN, args, { stdio: ['ignore', 'inherit', 'inherit'] });
  children.push(child);
  const exited = new Promise((_, reject) => child.on('exit', (code) => reject(new Error(`server ${name} exited with ${code}`))));
  const base = `http://127.0.0.1:${port}`;
  const ready = (async () => {
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      // /readyz answers when the stores are open: wait for that event.
      const ok = await fetch(`${base}/readyz`).then((r) => r.ok, () => false);
      if (ok) return;
      if (Date.now() > deadline) throw new Error(`server ${name} not ready`);
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
  await Promise.race([ready, exited]);
  log(`server ${name} ready at ${base}`);
  return base;
}

async function api(base, method, path, { token, body, headers = {} } = {}) {
  const h = { ...headers };
  if (token) h.Authorization = `Bearer ${token}`;
  if (body !== undefined && typeof body !== 'string' && !(body instanceof Uint8Array)) h['Content-Type'] = 'application/json';
  const res = await fetch(base + path, {
    method,
    headers: h,
    body: body === undefined ? undefined : typeof body === 'string' || body instanceof Uint8Array ? body : JSON.stringify(body),
  });
  const text = await res.text();
  let json;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    json = text;
  }
  if (!res.ok) throw new Error(`${method} ${path} → ${res.status} ${text}`);
  return json;
}

// ---- the page -------------------------------------------------------------

const consoleErrors = [];

async function newPage(browser, base, viewport = DESKTOP) {
  const context = await browser.newContext({ viewport, acceptDownloads: true });
  const page = await context.newPage();
  page.setDefaultTimeout(EVENT_TIMEOUT_MS);
  page.on('console', (m) => {
    // Chromium logs every 4xx/5xx answer as "Failed to load resource"; the
    // journeys provoke those on purpose (401 refresh, 402, 503, 429, 409).
    if (m.type() === 'error' && !m.text().startsWith('Failed to load resource: the server responded with a status of')) {
      consoleErrors.push(`${page.url()}: ${m.text()}`);
    }
  });
  page.on('pageerror', (e) => consoleErrors.push(`${page.url()}: ${e.message}`));
  await page.goto(base + '/');
  return page;
}

async function screenshot(page, name) {
  shot++;
  await page.screenshot({ path: join(SHOTS, `${String(shot).padStart(2, '0')}-${name}.png`), fullPage: true });
}

const key = (page, combo) => page.keyboard.press(combo);
const MOD = 'Control';

async function register(page, email, name = 'Ada Creator') {
  await page.getByRole('button', { name: 'Create Account' }).click();
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Name').fill(name);
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
}

async function buy(page, credits) {
  await key(page, `${MOD}+2`);
  await page.getByRole('heading', { name: 'Credits', level: 1 }).waitFor();
  await page.locator(`[data-package="credits_${credits}"]`).getByRole('button', { name: 'Buy Now' }).click();
  await page.getByText(`${credits} credits are in your balance.`).waitFor();
}

async function openSubmit(page) {
  await key(page, `${MOD}+1`);
  await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
  if (!(await page.getByRole('heading', { name: 'Submit Job' }).isVisible())) {
    await page.getByRole('button', { name: 'Submit Job' }).click();
  }
}

/** Fills and submits the Submit Job form; returns the job id the app shows, or null. */
async function submitJob(page, { type, payload, priority = 'Normal', gpu = false }) {
  await openSubmit(page);
  await page.getByLabel('Job Type').selectOption(type);
  await page.getByLabel('Priority').selectOption({ label: priority });
  await page.getByLabel('Payload').fill(payload);
  const toggle = page.getByRole('switch', { name: 'GPU Required' });
  if ((await toggle.isChecked()) !== gpu) await toggle.click();
  await page.getByRole('button', { name: 'Submit', exact: true }).click();
  const outcome = page.locator('.submit-job [role="status"], .submit-job [role="alert"]');
  await outcome.first().waitFor();
  const id = page.getByTestId('submitted-job');
  return (await id.count()) ? (await id.textContent()).trim() : null;
}

async function badgeOf(page, jobId) {
  return page.locator(`tr[data-job="${jobId}"] .badge`);
}

async function waitStatus(page, jobId, status, timeout = EVENT_TIMEOUT_MS) {
  await page.waitForFunction(
    ([id, s]) => document.querySelector(`tr[data-job="${id}"] .badge`)?.textContent === s,
    [jobId, status],
    { timeout },
  );
}

async function colourOf(locator) {
  return locator.evaluate((el) => getComputedStyle(el).backgroundColor);
}

// ---- journeys ---------------------------------------------------------------

async function journeyAccount(browser, A) {
  log('journey: Create Account → logged in at once');
  const page = await newPage(browser, A);
  await page.getByRole('button', { name: 'Create Account' }).click();
  await page.getByLabel('Email').fill('short@example.com');
  await page.getByLabel('Name').fill('Short');
  await page.getByLabel(/^Password/).fill('1234567');
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByText('The password needs at least 8 characters.').waitFor();
  await screenshot(page, 'create-account');
  await page.getByLabel(/^Password/).fill(PASSWORD);
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByRole('button', { name: 'Register' }).click();
  await page.getByRole('heading', { name: 'Jobs', level: 1 }).waitFor();
  await key(page, `${MOD}+4`);
  await page.getByTestId('who').getByText('ada@example.com').waitFor();
  await screenshot(page, 'account');
  return page;
}

async function journeyCredits(page) {
  log('journey: Buy Credits → 100 credits in the Available Balance card');
  await key(page, `${MOD}+2`);
  await page.getByRole('heading', { name: 'Available Balance' }).waitFor();
  for (const text of ['$10.00 ($0.100/credit)', '$40.00 ($0.080/credit)', '$70.00 ($0.070/credit)']) {
    await page.getByText(text).waitFor();
  }
  check((await page.getByTestId('available').textContent()) === '0', 'a new account has 0 available');
  await buy(page, 100);
  await page.getByText('Dev payment provider').or(page.getByText('(dev payment provider: no charge)')).first().waitFor();
  await page.waitForFunction(() => document.querySelector('[data-testid="available"]')?.textContent === '100');
  await screenshot(page, 'credits-bought');
}

async function journeySubmitAndDownload(page) {
  log('journey: Submit Job (URI and pasted JSON) → COMPLETED by auto-refresh → Download Result');
  const bad = await submitJob(page, { type: 'echo', payload: '{"unclosed": ' });
  check(bad === null, 'invalid JSON is not sent');
  await page.getByText(/Not valid JSON/).waitFor();

  const uriJob = await submitJob(page, { type: 'echo', payload: 's3://your-bucket/scene.blend', priority: 'High' });
  check(!!uriJob, 'the URI job was accepted');
  await page.getByText(/dispatched to node|queued/).first().waitFor();
  await screenshot(page, 'submitted');
  const jsonJob = await submitJob(page, { type: 'echo', payload: '{"hello": "world"}' });
  const benchJob = await submitJob(page, { type: 'cpu_benchmark', payload: '{"rounds": 1000}', priority: 'Low' });
  check(!!jsonJob && !!benchJob && jsonJob !== uriJob, 'the JSON jobs were accepted');
  for (const id of [uriJob, jsonJob, benchJob]) await waitStatus(page, id, 'COMPLETED');
  check((await colourOf(await badgeOf(page, jsonJob))) === COLOURS['status-completed'], 'COMPLETED is green');
  await screenshot(page, 'jobs-completed');

  await page.locator(`tr[data-job="${jsonJob}"]`).click();
  await page.getByRole('button', { name: 'Download Result' }).waitFor();
  check((await page.getByRole('button', { name: 'Cancel', exact: true }).count()) === 0, 'a completed job has no Cancel');
  const sha = (await page.locator('.detail dt:text-is("Result SHA-256") + dd').textContent()).trim();
  const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download Result' }).click()]);
  const bytes = readFileSync(await download.path());
  check(bytes.toString() === '{"hello":"world"}', `downloaded the echo result, got ${bytes}`);
  check(createHash('sha256').update(bytes).digest('hex') === sha, 'the saved file has the SHA-256 the job recorded');
  await page.getByText(/SHA-256 checked/).waitFor();
  await screenshot(page, 'job-detail-downloaded');

  // A double click submits once: one Idempotency-Key, one request in flight.
  const posts = [];
  page.on('request', (r) => r.url().endsWith('/api/v1/jobs/dispatch') && posts.push(r.headers()['idempotency-key']));
  await openSubmit(page);
  await page.getByLabel('Job Type').selectOption('echo');
  await page.getByLabel('Payload').fill('{"double": "click"}');
  await page.getByRole('button', { name: 'Submit', exact: true }).dblclick();
  await page.getByTestId('submitted-job').waitFor();
  check(posts.length >= 1 && new Set(posts).size === 1, `a double click sent one key (${posts.join(', ')})`);
  return { benchJob };
}

async function journeyNoCredits(browser, A) {
  log('journey: 402 → the guide\'s warning, with a way to Credits');
  const page = await newPage(browser, A);
  await register(page, 'broke@example.com', 'Broke');
  // cpu_benchmark costs 1 credit and the local node runs it: only the credits are missing.
  await submitJob(page, { type: 'cpu_benchmark', payload: '{"rounds": 10}' });
  await page.getByText('Not enough credits.').waitFor();
  await page.getByText('Navigate to Credits and purchase more.').waitFor();
  await screenshot(page, 'insufficient-credits');
  await page.getByRole('button', { name: 'Go to Credits' }).click();
  await page.getByRole('heading', { name: 'Buy Credits' }).waitFor();
  await page.context().close();
}

async function journeyQueueCancelAndNoNodes(browser, B) {
  log('journey (server B): QUEUED, Cancel, DISPATCHED → RUNNING → COMPLETED by auto-refresh, "No healthy nodes"');
  const admin = await api(B, 'POST', '/api/v1/auth/login', { body: { email: 'ops@example.com', password: PASSWORD } });
  const page = await newPage(browser, B);
  await register(page, 'grace@example.com', 'Grace');
  await buy(page, 100);

  const none = await submitJob(page, { type: 'echo', payload: '{"a": 1}' });
  check(none === null, 'no node: refused');
  await page.getByText('No healthy nodes').waitFor();
  await screenshot(page, 'no-healthy-nodes');

  const { token } = await api(B, 'POST', '/api/v1/admin/enrollment-tokens', { token: admin.access_token, body: {} });
  const node = await api(B, 'POST', '/api/v1/nodes/enroll', {
    body: { token, name: 'e2e-hand-node', job_types: ['echo', 'cpu_benchmark'], gpu: false, slots: 1 },
  });
  await api(B, 'POST', '/api/v1/nodes/heartbeat', { token: node.credential, body: {} });

  const render = await submitJob(page, { type: 'render', payload: 's3://your-bucket/scene.blend' });
  check(render === null, 'no node runs render: refused');
  await page.getByText('No healthy nodes').waitFor();

  const first = await submitJob(page, { type: 'cpu_benchmark', payload: '{"rounds": 10}' });
  const second = await submitJob(page, { type: 'echo', payload: '{"wait": "in line"}' });
  await waitStatus(page, first, 'DISPATCHED');
  await waitStatus(page, second, 'QUEUED');
  check((await colourOf(await badgeOf(page, second))) === COLOURS['status-queued'], 'QUEUED is yellow');
  check((await colourOf(await badgeOf(page, first))) === COLOURS['status-dispatched'], 'DISPATCHED is blue');
  await screenshot(page, 'queued-and-dispatched');

  await page.locator(`tr[data-job="${second}"]`).click();
  await page.getByRole('button', { name: 'Cancel', exact: true }).click();
  await page.getByText('Job cancelled; its hold was released.').waitFor();
  await waitStatus(page, second, 'CANCELLED');
  check((await page.getByRole('button', { name: 'Cancel', exact: true }).count()) === 0, 'a cancelled job has no Cancel');
  await page.getByRole('button', { name: 'Close job details' }).click();

  // The node starts and finishes the job; the page is not touched: only the
  // 5-second auto-refresh can show the new statuses.
  await api(B, 'POST', `/api/v1/nodes/jobs/${first}/started`, { token: node.credential, body: {} });
  await waitStatus(page, first, 'RUNNING');
  const running = await badgeOf(page, first);
  check((await running.evaluate((el) => getComputedStyle(el).animationName)) === 'pulse', 'RUNNING is animated');
  await screenshot(page, 'running');
  const result = new TextEncoder().encode('{"score": 42}');
  const sha = createHash('sha256').update(result).digest('hex');
  await api(B, 'PUT', `/api/v1/nodes/jobs/${first}/result`, {
    token: node.credential,
    body: result,
    headers: { 'X-Result-SHA256': sha, 'Content-Type': 'application/octet-stream' },
  });
  await waitStatus(page, first, 'COMPLETED');

  // A refund shows as a blue badge.
  await api(B, 'POST', `/api/v1/admin/jobs/${first}/refund`, { token: admin.access_token, body: { amount: 1, reason: 'e2e' } });
  await key(page, `${MOD}+2`);
  await page.locator('tr[data-type="refund"] .badge').waitFor();
  check((await colourOf(page.locator('tr[data-type="refund"] .badge'))) === COLOURS['tx-refund'], 'refund is blue');
  await screenshot(page, 'refund');
  await page.context().close();
}

async function journeyHistoryVerifyUsage(page, A) {
  log('journey: Transaction History badges → Verify in the app (and a tampered proof fails) → Usage Chart');
  await key(page, `${MOD}+2`);
  await page.locator('tr[data-type="deduction"]').first().waitFor();
  check((await colourOf(page.locator('tr[data-type="purchase"] .badge').first())) === COLOURS['tx-purchase'], 'purchase is green');
  check((await colourOf(page.locator('tr[data-type="deduction"] .badge').first())) === COLOURS['tx-deduction'], 'deduction is red');
  await page.locator('tr[data-type="hold"] .badge').first().waitFor();

  // The usage chart: today's use is the cpu_benchmark job's 1 credit.
  const today = await page.locator('[data-testid="usage-table"] tbody tr').last().locator('td').nth(1).textContent();
  check(today === '1', `today's usage is 1 credit, the chart says ${today}`);
  check((await page.getByTestId('usage-total').textContent()) === '1', 'the 7-day total is 1');
  check(await page.locator('.usage canvas').evaluate((c) => c.width > 0 && c.height > 0), 'the chart is drawn');

  // Wait for the purchase to be anchored, refreshing with Ctrl/Cmd+R.
  const purchase = page.locator('tr[data-type="purchase"]').first();
  const entryId = await purchase.getAttribute('data-entry');
  const deadline = Date.now() + ANCHOR_TIMEOUT_MS;
  while ((await purchase.locator('td').nth(5).textContent()) !== 'yes') {
    check(Date.now() < deadline, 'the purchase was anchored in time');
    await Promise.all([
      page.waitForResponse((r) => r.url().includes('/api/v1/credits/transactions')),
      key(page, `${MOD}+R`),
    ]);
  }
  await screenshot(page, 'transactions');
  await purchase.getByRole('button', { name: /^Verify/ }).click();
  await page.getByRole('heading', { name: 'Ledger', level: 1 }).waitFor();
  await page.getByText('Verified in this app').waitFor();
  const checks = await page.locator('[data-check]').evaluateAll((els) => els.map((e) => [e.getAttribute('data-check'), e.getAttribute('data-ok')]));
  check(checks.length === 7 && checks.every(([, ok]) => ok === 'true'), `every check passed: ${JSON.stringify(checks)}`);
  const chain = await api(A, 'GET', '/api/v1/ledger/chain');
  await page.locator('[data-check="contract"]').getByText(chain.contract).first().waitFor();
  await screenshot(page, 'verified');

  const { access_token } = await api(A, 'POST', '/api/v1/auth/login', { body: { email: 'ada@example.com', password: PASSWORD } });
  const proof = await api(A, 'GET', `/api/v1/ledger/${entryId}/proof`, { token: access_token });
  const entry = Buffer.from(proof.entry, 'base64').toString().replace('"credits":100', '"credits":1000');
  const tampered = { ...proof, entry: Buffer.from(entry).toString('base64') };
  await page.getByText('Check a proof file').click();
  await page.getByLabel(/Proof JSON/).fill(JSON.stringify(tampered));
  await page.getByRole('button', { name: 'Check proof' }).click();
  await page.getByText('Proof check FAILED').waitFor();
  check((await page.locator('[data-check="leaf_hash"]').getAttribute('data-ok')) === 'false', 'the tampered leaf hash fails');
  check((await page.locator('[data-check="root_on_chain"]').getAttribute('data-ok')) === 'false', 'the tampered proof is not on chain');
  await screenshot(page, 'tampered-proof');
}

async function journeyShortcuts(page) {
  log('journey: every shortcut, the help, keyboard reach');
  const tabs = ['Jobs', 'Credits', 'Ledger', 'Account'];
  for (let i = 0; i < 4; i++) {
    await key(page, `${MOD}+${i + 1}`);
    await page.getByRole('heading', { name: tabs[i], level: 1 }).waitFor();
  }
  await key(page, `${MOD}+2`);
  await page.getByRole('heading', { name: 'Credits', level: 1 }).waitFor();
  const [refreshed] = await Promise.all([
    page.waitForResponse((r) => r.url().includes('/api/v1/credits/balance')),
    key(page, `${MOD}+R`),
  ]);
  check(refreshed.ok() && page.url().includes('#/credits'), 'Ctrl/Cmd+R refreshed the page data, not the page');
  await key(page, `${MOD}+N`);
  await page.getByRole('heading', { name: 'Submit Job' }).waitFor();
  check(await page.getByLabel('Job Type').evaluate((el) => el === document.activeElement), 'Ctrl/Cmd+N focuses the form');
  await page.locator('body').click({ position: { x: 5, y: 780 } });
  await key(page, 'Shift+?');
  const help = page.getByRole('dialog', { name: 'Keyboard shortcuts' });
  await help.waitFor();
  for (const k of ['Ctrl/Cmd + N', 'Ctrl/Cmd + R', 'Ctrl/Cmd + 1-4']) await help.getByText(k, { exact: true }).waitFor();
  await screenshot(page, 'help');
  await help.getByRole('button', { name: 'Close' }).click();

  // Keyboard reach: Tab gets to Submit Job and Enter opens a job's details.
  await key(page, `${MOD}+1`);
  await page.locator('body').focus();
  let reached = false;
  for (let i = 0; i < 40 && !reached; i++) {
    await key(page, 'Tab');
    reached = await page.evaluate(() => document.activeElement?.textContent === 'Submit Job');
  }
  check(reached, 'Submit Job is reachable with Tab');
  await page.locator('tr[data-job]').first().focus();
  await key(page, 'Enter');
  await page.getByRole('heading', { name: /^Job / }).waitFor();
}

async function journeyNarrow(browser, A) {
  log('journey: a narrow window');
  const page = await newPage(browser, A, NARROW);
  await page.getByRole('button', { name: 'Create Account' }).click();
  await screenshot(page, 'narrow-login');
  await page.getByRole('button', { name: 'I have an account: log in' }).click();
  await page.getByLabel('Email').fill('ada@example.com');
  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Log in' }).click();
  for (const [k, heading] of [['1', 'Jobs'], ['2', 'Credits']]) {
    await key(page, `${MOD}+${k}`);
    await page.getByRole('heading', { name: heading, level: 1 }).waitFor();
    const wide = await page.evaluate(() =>
      [...document.querySelectorAll('body *')]
        .filter((el) => el.getBoundingClientRect().right > window.innerWidth + 1 && !el.closest('.table-wrap > table'))
        .slice(0, 5)
        .map((el) => `${el.tagName}.${el.className} right=${Math.round(el.getBoundingClientRect().right)}`));
    const fits = await page.evaluate(() => document.documentElement.scrollWidth <= window.innerWidth);
    check(fits && wide.length === 0, `${heading} fits a ${NARROW.width}px window: ${wide.join('; ')}`);
    await screenshot(page, `narrow-${heading.toLowerCase()}`);
  }
  await key(page, `${MOD}+4`);
  await page.getByRole('button', { name: 'Log out' }).click();
  await page.getByRole('heading', { name: 'Log in to RenderTrust' }).waitFor();
  await page.context().close();
}

async function journeyLoginErrors(browser, A) {
  log('journey: login errors and 429 with the wait from Retry-After');
  const page = await newPage(browser, A);
  let limited = false;
  for (let i = 0; i < 10 && !limited; i++) {
    await page.getByLabel('Email').fill('ada@example.com');
    await page.getByLabel('Password').fill('wrong password');
    const [res] = await Promise.all([
      page.waitForResponse((r) => r.url().endsWith('/api/v1/auth/login')),
      page.getByRole('button', { name: 'Log in' }).click(),
    ]);
    if (res.status() === 401) await page.getByText('Wrong email or password.').waitFor();
    limited = res.status() === 429;
  }
  check(limited, 'repeated failures are rate limited');
  await page.getByText(/Too many attempts\. Try again in \d+ seconds?\./).waitFor();
  await screenshot(page, 'rate-limited');
  await page.context().close();
}

// ---- main -------------------------------------------------------------------

async function main() {
  rmSync(SHOTS, { recursive: true, force: true });
  mkdirSync(SHOTS, { recursive: true });
  const [A, B] = await Promise.all([
    startServer('a', []),
    startServer('b', ['--no-local-node'], (dir) => {
      const r = spawnSync(BIN, ['admin', 'create-user', '--admin', '--email', 'ops@example.com', '--password', PASSWORD, '--data-dir', dir], {
        stdio: 'inherit',
      });
      check(r.status === 0, 'admin create-user');
    }),
  ]);
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
  try {
    const page = await journeyAccount(browser, A);
    await journeyCredits(page);
    await journeySubmitAndDownload(page);
    await journeyNoCredits(browser, A);
    await journeyQueueCancelAndNoNodes(browser, B);
    await journeyHistoryVerifyUsage(page, A);
    await journeyShortcuts(page);
    await page.context().close();
    await journeyNarrow(browser, A);
    await journeyLoginErrors(browser, A);
    check(consoleErrors.length === 0, `no console errors:\n${consoleErrors.join('\n')}`);
    log(`all journeys passed; ${shot} screenshots in ${SHOTS}`);
  } finally {
    await browser.close();
  }
}

/** Stops the servers (waiting for them to exit) and removes their data. */
async function cleanup() {
  await Promise.all(
    children
      .filter((c) => c.exitCode === null)
      .map((c) => new Promise((resolve) => {
        c.removeAllListeners('exit');
        c.on('exit', resolve);
        c.kill('SIGTERM');
      })),
  );
  for (const d of tmpDirs) rmSync(d, { recursive: true, force: true });
}

main().then(
  async () => {
    await cleanup();
    process.exit(0);
  },
  async (e) => {
    console.error(e);
    await cleanup();
    process.exit(1);
  },
);
