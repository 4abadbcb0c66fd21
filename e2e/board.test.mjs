// The availability board in a real headless Chromium, against the real
// holdfast-server and holdfast-worker binaries on a throw-away database and a
// private Redis queue. Two agents' pages are open at once: A reserves a plot
// by a click, B sees it within 2 s without a reload, B's click gets the
// server's PROPERTY_UNAVAILABLE message, and after the short hold the worker
// releases it and both pages show it available again. Then a 2,000-plot
// project is opened and used. Saves a screenshot of the board to
// target/board.png, or where HOLDFAST_BOARD_SCREENSHOT says (`just board-screenshot`
// writes the README's docs/board.png): a test run leaves the source tree alone.
//
// Run: `npm test --prefix e2e` (after `scripts/e2e-setup.sh` and a
// `cargo build`), or through `cargo nextest run --test board`.
// Everything it starts is stopped, and the database and Redis keys removed,
// whatever happens.

import assert from 'node:assert/strict';
import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

import { chromium } from 'playwright-core';

const run = promisify(execFile);
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
const SERVER_BIN = env.HOLDFAST_SERVER_BIN || path.join(root, 'target/debug/holdfast-server');
const WORKER_BIN = env.HOLDFAST_WORKER_BIN || path.join(root, 'target/debug/holdfast-worker');
const CHROMIUM = env.HOLDFAST_CHROMIUM || '/usr/bin/chromium';
const PG = (env.HOLDFAST_TEST_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const REDIS = env.HOLDFAST_TEST_REDIS || 'redis://127.0.0.1:6379';
const SCREENSHOT = env.HOLDFAST_BOARD_SCREENSHOT || path.join(root, 'target/board.png');
const TTL_S = 6;
/** The whole run, set-up and clean-up included. */
const DEADLINE_MS = 150_000;
const BIG = 2000;

const started = Date.now();
const since = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;
const log = (...args) => console.log(`[board e2e ${since()}]`, ...args);
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

const suffix = crypto.randomBytes(6).toString('hex');
const dbName = `hf_e2e_${suffix}`;
const queue = `hf_e2e_${suffix}`;
const children = [];
let browser = null;
/** The open boards, whose messages are shown when the test fails. */
const boards = [];
/** From the server's kill until both boards are live again on its successor. */
let serverDown = false;
let cleaned = false;

// ---- processes ------------------------------------------------------------

function freePort() {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });
}

function baseEnv(extra) {
  return {
    ...env,
    DATABASE_URL: `${PG}/${dbName}`,
    REDIS_URL: REDIS,
    HOLDFAST_QUEUE: queue,
    HOLDFAST_ENV: 'development',
    HOLDFAST_RESERVATION_TTL: `${TTL_S}s`,
    HOLDFAST_LOG_FORMAT: 'pretty',
    RUST_LOG: env.RUST_LOG || 'info',
    NO_COLOR: '1',
    ...extra,
  };
}

/** A long-running binary whose output is kept, and shown when the test fails. */
function start(name, bin, extraEnv) {
  const child = spawn(bin, [], { env: baseEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
  const lines = [];
  const keep = (chunk) => {
    for (const line of chunk.toString().split('\n')) {
      if (!line) continue;
      lines.push(line);
      if (lines.length > 400) lines.shift();
      if (env.TEST_LOG) console.log(`[${name}] ${line}`);
    }
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  const proc = { name, child, lines, exited: null };
  child.on('exit', (code, signal) => { proc.exited = { code, signal }; });
  children.push(proc);
  return proc;
}

async function stop(proc) {
  if (proc.exited) return;
  const gone = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

async function waitForHttp(url, proc, timeoutMs = 30_000) {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (proc.exited) throw new Error(`${proc.name} exited early (${JSON.stringify(proc.exited)})`);
    try {
      const res = await fetch(url);
      if (res.ok) return;
    } catch (e) { /* not up yet */ }
    await sleep(100);
  }
  throw new Error(`${url} did not answer 200 within ${timeoutMs} ms`);
}

async function cleanUp() {
  if (cleaned) return;
  cleaned = true;
  if (browser) await browser.close().catch(() => {});
  await Promise.all(children.map(stop));
  try {
    await run('psql', [`${PG}/postgres`, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`]);
  } catch (e) {
    console.error(`could not drop the database ${dbName}: ${e.message}`);
  }
  try {
    const { stdout } = await run('redis-cli', ['-u', REDIS, '--scan', '--pattern', `*${queue}*`]);
    const keys = stdout.split('\n').filter(Boolean);
    for (let i = 0; i < keys.length; i += 100) {
      await run('redis-cli', ['-u', REDIS, 'DEL', ...keys.slice(i, i + 100)]);
    }
  } catch (e) {
    console.error(`could not delete the Redis keys of ${queue}: ${e.message}`);
  }
}

// ---- GraphQL from the test itself (other agents, checks) --------------------

let base = '';

async function gql(token, query, variables = {}) {
  const res = await fetch(`${base}/graphql`, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json', Authorization: `Bearer ${token}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await res.json();
  if (body.errors) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  return body.data;
}

// ---- the board, as a page ---------------------------------------------------

const cell = (page, code) => page.locator(`#grid button.plot[data-code="${code}"]`);

async function attr(page, code, name) {
  return cell(page, code).getAttribute(name);
}

/** Resolves with the time it took for the plot's cell to get `data-<name>` = value. */
async function waitForCell(page, code, name, value, timeoutMs) {
  const t0 = Date.now();
  await page.waitForFunction(
    ([c, n, v]) => {
      const b = document.querySelector(`#grid button.plot[data-code="${c}"]`);
      return b && b.getAttribute(`data-${n}`) === v;
    },
    [code, name, value],
    { timeout: timeoutMs, polling: 25 },
  );
  return Date.now() - t0;
}

/** A new page on the board, signed in through the URL fragment or the form. */
async function openBoard(context, token, { project = null, plots, viaForm = false }) {
  const page = await context.newPage();
  boards.push(page);
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => {
    // While the test has the server down, Chromium logs each reconnection
    // attempt that is refused; that is the scenario, not a script error.
    if (serverDown && /WebSocket connection to .* failed: .*ERR_CONNECTION_REFUSED/.test(m.text())) return;
    if (m.type() === 'error') errors.push(`console error: ${m.text()}`);
  });
  const t0 = Date.now();
  if (viaForm) {
    await page.goto(`${base}/board`);
    await page.getByLabel('Bearer token').fill(token);
    await page.getByRole('button', { name: 'Open the board' }).click();
  } else {
    await page.goto(`${base}/board#token=${encodeURIComponent(token)}${project ? `&project=${project}` : ''}`);
  }
  await page.waitForFunction((n) => document.querySelectorAll('#grid button.plot').length === n, plots, { timeout: 30_000 });
  const loadedMs = Date.now() - t0;
  await page.waitForSelector('#live[data-state="on"]', { timeout: 10_000 });
  assert.ok(!page.url().includes('token='), `the token must leave the address bar, got ${page.url()}`);
  return { page, errors, loadedMs };
}

async function counts(page) {
  return page.evaluate(() => ({
    available: Number(document.getElementById('n-available').textContent),
    reserved: Number(document.getElementById('n-reserved').textContent),
    sold: Number(document.getElementById('n-sold').textContent),
    total: Number(document.getElementById('n-total').textContent),
  }));
}

async function serverCounts(token, projectId) {
  const data = await gql(token, 'query($id: ID!) { project(id: $id) { totalPlots availablePlots reservedPlots soldPlots } }', { id: projectId });
  const p = data.project;
  return { available: p.availablePlots, reserved: p.reservedPlots, sold: p.soldPlots, total: p.totalPlots };
}

// ---- the scenario -------------------------------------------------------------

async function main() {
  for (const [what, file] of [['holdfast-server', SERVER_BIN], ['holdfast-worker', WORKER_BIN], ['Chromium', CHROMIUM]]) {
    if (!fs.existsSync(file)) throw new Error(`${what} is missing at ${file} (build with cargo, and run scripts/e2e-setup.sh)`);
  }

  log(`database ${dbName}, queue ${queue}, hold time ${TTL_S}s`);
  await run(SERVER_BIN, ['migrate'], { env: baseEnv() });
  const { stdout: seeded } = await run(SERVER_BIN, ['seed-demo', '--no-holds'], { env: baseEnv() });
  const tokens = {};
  for (const m of seeded.matchAll(/(\S+)@demo\.holdfast\.test\s+(\S+)\s*$/gm)) tokens[m[1]] = m[2];
  const projectId = (seeded.match(/project "Riverside Gardens" \(([0-9a-f-]{36})\)/) || [])[1];
  assert.ok(tokens.alice && tokens.bob && tokens.carol && tokens.manager && projectId, `seed-demo's output was not understood:\n${seeded}`);

  const port = await freePort();
  const metricsPort = await freePort();
  base = `http://127.0.0.1:${port}`;
  const worker = start('worker', WORKER_BIN, {
    HOLDFAST_SWEEP_SCHEDULE: '*/1 * * * * *',
    HOLDFAST_METRICS_LISTEN: `127.0.0.1:${metricsPort}`,
  });
  let server = start('server', SERVER_BIN, { HOLDFAST_LISTEN: `127.0.0.1:${port}` });
  await waitForHttp(`${base}/healthz`, server);
  await waitForHttp(`http://127.0.0.1:${metricsPort}/readyz`, worker);
  log(`server at ${base}, worker ready`);

  const head = await fetch(`${base}/board`);
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type'), /^text\/html/);
  assert.match(head.headers.get('content-security-policy') || '', /default-src 'none'/);

  browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
  // No request may leave the server's origin: the page loads nothing from elsewhere.
  const foreign = [];
  const watch = (context) => context.on('request', (r) => { if (!r.url().startsWith(base)) foreign.push(r.url()); });
  const desk = await browser.newContext({ viewport: { width: 1280, height: 860 }, deviceScaleFactor: 1 });
  const phone = await browser.newContext({ viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true });
  watch(desk);
  watch(phone);

  const a = await openBoard(desk, tokens.alice, { plots: 50 });
  const b = await openBoard(phone, tokens.bob, { plots: 50, viaForm: true });
  log(`Alice's board (desktop, token in the link) loaded in ${a.loadedMs} ms, Bob's (phone, 390 px wide, token typed in) in ${b.loadedMs} ms`);
  const phoneWidth = await b.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(phoneWidth <= 390, `the phone page must not scroll sideways (scrollWidth ${phoneWidth})`);
  assert.equal(await cell(a.page, 'A-007').getAttribute('aria-label'), 'Reserve A-007');
  assert.deepEqual(await counts(a.page), { available: 50, reserved: 0, sold: 0, total: 50 });

  // Other agents at work, through the API: both pages follow, which also
  // shows both live feeds are subscribed before the scenario starts.
  const plots = (await gql(tokens.carol, 'query($id: ID!) { project(id: $id) { properties(first: 100) { nodes { id code } } } }', { id: projectId }))
    .project.properties.nodes;
  const idOf = Object.fromEntries(plots.map((p) => [p.code, p.id]));
  const reserve = async (token, code) => (await gql(token, 'mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }', { id: idOf[code] })).reserveProperty.id;
  const carolHold = await reserve(tokens.carol, 'B-003');
  await gql(tokens.carol, 'mutation($id: ID!) { convertReservation(reservationId: $id) { id } }', { id: carolHold });
  await reserve(tokens.carol, 'A-012');
  await reserve(tokens.carol, 'A-013');
  await reserve(tokens.bob, 'A-021');
  for (const page of [a.page, b.page]) {
    await waitForCell(page, 'B-003', 'status', 'sold', 5000);
    await waitForCell(page, 'A-013', 'status', 'reserved', 5000);
    await waitForCell(page, 'A-021', 'status', 'reserved', 5000);
  }
  assert.equal(await attr(b.page, 'A-021', 'data-kind'), 'mine', "Bob's own hold shows as his");
  assert.deepEqual(await counts(a.page), { available: 46, reserved: 3, sold: 1, total: 50 });
  log('other agents\' changes made through the API show on both pages');

  for (const page of [a.page, b.page]) await page.evaluate(() => { window.boardNotReloaded = true; });

  // A reserves A-007 by a click.
  const clicked = Date.now();
  await cell(a.page, 'A-007').click();
  const aMs = await waitForCell(a.page, 'A-007', 'kind', 'mine', 3000);
  // B, open at the same time, shows it reserved within 2 s, without a reload.
  await waitForCell(b.page, 'A-007', 'status', 'reserved', Math.max(1, 2000 - (Date.now() - clicked)));
  const bMs = Date.now() - clicked;
  log(`Alice's click: her page shows A-007 as hers after ${aMs} ms; Bob's page shows it reserved ${bMs} ms after the click`);
  assert.ok(bMs <= 2000, `Bob's page must show the hold within 2 s, took ${bMs} ms`);
  const bText = await cell(b.page, 'A-007').innerText();
  assert.match(bText, /Reserved/);
  assert.match(bText, /by Alice Agent/);
  assert.match(bText, /\d+:\d\d left/);
  assert.equal(await attr(b.page, 'A-007', 'aria-label'), 'Reserve A-007 (reserved by Alice Agent)');
  assert.equal(await attr(a.page, 'A-007', 'aria-label'), 'Release A-007 (reserved by you)');
  const reservedAt = await attr(b.page, 'A-007', 'data-changed-at');
  assert.ok(reservedAt, 'the change came from the live feed');
  assert.deepEqual(await counts(b.page), await serverCounts(tokens.bob, projectId));

  // B's click on it: the server's PROPERTY_UNAVAILABLE message, in words.
  await cell(b.page, 'A-007').click();
  const message = b.page.locator('#messages .msg.error', { hasText: 'Could not reserve A-007' });
  await message.waitFor({ timeout: 3000 });
  const said = await message.innerText();
  assert.match(said, /Could not reserve A-007: the property is RESERVED until \d{4}-\d\d-\d\dT/);
  log(`Bob's click answered: "${said}"`);

  await a.page.screenshot({ path: SCREENSHOT });
  if (env.HOLDFAST_BOARD_PHONE_SCREENSHOT) await b.page.screenshot({ path: env.HOLDFAST_BOARD_PHONE_SCREENSHOT });
  log(`screenshot saved to ${path.relative(root, SCREENSHOT)}`);

  // After the short hold the worker releases it: both pages show it available
  // (the countdown shows that at zero), then the worker's change arrives.
  const holdEnds = clicked + TTL_S * 1000;
  for (const page of [a.page, b.page]) {
    await waitForCell(page, 'A-007', 'status', 'available', holdEnds - Date.now() + 5000);
  }
  log(`A-007 shows available on both pages ${Date.now() - holdEnds} ms after its hold ended`);
  // The worker records the end (its job, or the sweep, every second here).
  let ended = null;
  for (const until = Date.now() + 8000; !ended && Date.now() < until; await sleep(100)) {
    const r = (await gql(tokens.alice, 'query($id: ID!) { property(id: $id) { status reservations(first: 1) { nodes { status expiresAt endedAt } } } }', { id: idOf['A-007'] })).property;
    assert.equal(r.status, 'AVAILABLE');
    assert.equal(r.reservations.nodes[0].status, 'EXPIRED');
    if (r.reservations.nodes[0].endedAt) ended = r.reservations.nodes[0];
  }
  assert.ok(ended, 'the worker recorded the end of the hold within 8 s');
  // Both pages then get the worker's change over the live feed (or, if the
  // feed was cut and came back meanwhile, re-read the plots after the end).
  for (const [who, page] of [['Alice', a.page], ['Bob', b.page]]) {
    const how = await page.waitForFunction(
      ([expiresAt, endedAt]) => {
        const b = document.querySelector('#grid button.plot[data-code="A-007"]');
        if (!b || b.dataset.status !== 'available') return false;
        if (b.dataset.changedAt && Date.parse(b.dataset.changedAt) >= Date.parse(expiresAt)) return 'the live feed';
        const loadedAt = document.getElementById('grid').dataset.loadedAt;
        return loadedAt && Date.parse(loadedAt) >= Date.parse(endedAt) ? 'a re-read after a reconnect' : false;
      },
      [ended.expiresAt, ended.endedAt],
      { timeout: 5000, polling: 50 },
    );
    log(`${who}'s page got the worker's release (ended ${ended.endedAt}) through ${await how.jsonValue()}`);
  }
  assert.equal(await attr(a.page, 'A-007', 'aria-label'), 'Reserve A-007');
  for (const page of [a.page, b.page]) {
    assert.equal(await page.evaluate(() => window.boardNotReloaded), true, 'the page was not reloaded');
    assert.deepEqual(await counts(page), await serverCounts(tokens.alice, projectId));
  }

  // A releases their own hold by a click, too. The bounds are generous:
  // this checks that the clicks work, and CI runs it beside three other
  // tests on two cores (once more than 3 s for the release).
  await cell(a.page, 'A-030').click();
  await waitForCell(a.page, 'A-030', 'kind', 'mine', 10_000);
  await waitForCell(b.page, 'A-030', 'status', 'reserved', 10_000);
  await cell(a.page, 'A-030').click();
  await waitForCell(a.page, 'A-030', 'kind', 'available', 10_000);
  await waitForCell(b.page, 'A-030', 'status', 'available', 10_000);
  log('Alice reserved and released A-030 by clicks; Bob saw both');

  // A lapsed hold reads available at zero on its countdown, before any
  // release: the worker is paused (SIGSTOP) while Carol's hold runs out.
  await reserve(tokens.carol, 'A-033');
  for (const page of [a.page, b.page]) await waitForCell(page, 'A-033', 'status', 'reserved', 2000);
  const heldAt = await attr(a.page, 'A-033', 'data-changed-at');
  const before = await counts(a.page);
  worker.child.kill('SIGSTOP');
  try {
    const lapse = Date.now() + TTL_S * 1000;
    for (const page of [a.page, b.page]) await waitForCell(page, 'A-033', 'status', 'available', TTL_S * 1000 + 3000);
    log(`with the worker paused, A-033 shows available on both pages ${Date.now() - lapse} ms after its countdown's end`);
    for (const page of [a.page, b.page]) {
      assert.equal(await attr(page, 'A-033', 'data-changed-at'), heldAt, 'no release was published yet');
    }
    assert.deepEqual(await counts(a.page), { ...before, available: before.available + 1, reserved: before.reserved - 1 });
  } finally {
    worker.child.kill('SIGCONT');
  }
  for (const page of [a.page, b.page]) {
    await page.waitForFunction(
      (at) => document.querySelector('#grid button.plot[data-code="A-033"]').dataset.changedAt !== at,
      heldAt,
      { timeout: 8000, polling: 50 },
    );
  }
  log('the resumed worker released A-033 and both pages got its change');

  // A bad token: the sign-in form again, with the server's reason.
  const bad = await phone.newPage();
  await bad.goto(`${base}/board#token=not-a-token`);
  await bad.getByLabel('Bearer token').waitFor({ timeout: 5000 });
  const refusal = await bad.locator('#messages .msg.error', { hasText: 'Could not sign in' }).innerText({ timeout: 5000 });
  log(`a bad token: "${refusal}"`);
  await bad.close();

  // The server dies and comes back: both pages say so, reconnect, and
  // re-read, so that a change made while they were away shows too.
  serverDown = true;
  server.child.kill('SIGKILL');
  await new Promise((resolve) => { if (server.exited) resolve(); else server.child.once('exit', resolve); });
  const killed = Date.now();
  for (const page of [a.page, b.page]) {
    await page.waitForSelector('#live[data-state="retrying"]', { timeout: 5000 });
    await page.locator('#messages .msg', { hasText: 'reconnecting' }).first().waitFor({ timeout: 5000 });
  }
  server = start('server (restarted)', SERVER_BIN, { HOLDFAST_LISTEN: `127.0.0.1:${port}` });
  await waitForHttp(`${base}/healthz`, server);
  await reserve(tokens.carol, 'A-040');
  for (const page of [a.page, b.page]) {
    await waitForCell(page, 'A-040', 'status', 'reserved', 10_000);
    await page.waitForSelector('#live[data-state="on"]', { timeout: 10_000 });
  }
  serverDown = false;
  log(`server killed and restarted: both pages reconnected and show a hold made meanwhile, ${Date.now() - killed} ms after the kill`);

  // 2,000 plots: a manager makes the project, Alice opens and uses it.
  const big = (await gql(tokens.manager, 'mutation { createProject(name: "Harbour Point") { id } }')).createProject.id;
  const codes = Array.from({ length: BIG }, (_, i) => `H-${String(i + 1).padStart(4, '0')}`);
  for (let i = 0; i < BIG; i += 1000) {
    await gql(tokens.manager, 'mutation($p: ID!, $c: [String!]!) { addProperties(projectId: $p, codes: $c) { id } }', { p: big, c: codes.slice(i, i + 1000) });
  }
  const c = await openBoard(desk, tokens.alice, { project: big, plots: BIG });
  await c.page.bringToFront();
  log(`a ${BIG}-plot board loaded (20 pages) and drawn in ${c.loadedMs} ms`);
  assert.ok(c.loadedMs < 15_000, `${BIG} plots took ${c.loadedMs} ms`);
  // Many holds counting down at once, changed elsewhere, while Alice clicks.
  const bigPlots = [];
  for (let after = null; ;) {
    const page = (await gql(tokens.carol, 'query($id: ID!, $after: String) { project(id: $id) { properties(first: 100, after: $after) { nodes { id code } pageInfo { hasNextPage endCursor } } } }', { id: big, after })).project.properties;
    bigPlots.push(...page.nodes);
    if (!page.pageInfo.hasNextPage) break;
    after = page.pageInfo.endCursor;
  }
  const bigId = Object.fromEntries(bigPlots.map((p) => [p.code, p.id]));
  for (const code of ['H-0101', 'H-0102', 'H-0103']) {
    await gql(tokens.carol, 'mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }', { id: bigId[code] });
  }
  await waitForCell(c.page, 'H-0103', 'status', 'reserved', 2000);
  const lastCode = codes[BIG - 1];
  await cell(c.page, lastCode).scrollIntoViewIfNeeded();
  const t1 = Date.now();
  await cell(c.page, lastCode).click();
  await waitForCell(c.page, lastCode, 'kind', 'mine', 3000);
  const bigClickMs = Date.now() - t1;
  // Main-thread stalls (Chromium's long tasks, over 50 ms): the initial draw,
  // and then a second of countdowns with holds changing.
  await c.page.waitForTimeout(1000);
  const longest = await c.page.evaluate((clickedAt) => new Promise((resolve) => {
    new PerformanceObserver((list, observer) => {
      observer.disconnect();
      const tasks = list.getEntries();
      const after = tasks.filter((t) => performance.timeOrigin + t.startTime >= clickedAt);
      const max = (ts) => Math.round(Math.max(0, ...ts.map((t) => t.duration)));
      resolve({ overall: max(tasks), afterClick: max(after) });
    }).observe({ type: 'longtask', buffered: true });
    // An observer with nothing buffered is never called back.
    setTimeout(() => resolve({ overall: 0, afterClick: 0 }), 500);
  }), t1);
  log(`on ${BIG} plots: Alice's click on ${lastCode} showed her hold in ${bigClickMs} ms; longest main-thread task: ${longest.overall} ms while loading, ${longest.afterClick} ms after the click`);
  // Bounds with room for a loaded CI machine; typical figures are in the log.
  assert.ok(bigClickMs < 2000, `the click took ${bigClickMs} ms to show`);
  assert.ok(longest.afterClick < 500, `the page stalled for ${longest.afterClick} ms after the click`);
  assert.deepEqual(await counts(c.page), await serverCounts(tokens.alice, big));

  assert.deepEqual(foreign, [], 'the board loads nothing from another origin');
  for (const page of [a, b, c]) assert.deepEqual(page.errors, [], 'no script errors in the page');
  for (const proc of [server, worker]) {
    assert.equal(proc.exited, null, `${proc.name} is still running`);
    assert.ok(!proc.lines.some((l) => l.includes('panicked')), `${proc.name} panicked`);
  }
}

const deadline = setTimeout(async () => {
  console.error(`[board e2e] FAILED: not done within ${DEADLINE_MS / 1000} s`);
  await cleanUp();
  process.exit(1);
}, DEADLINE_MS);

for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, async () => {
    await cleanUp();
    process.exit(1);
  });
}

try {
  await main();
  log('PASSED');
  await cleanUp();
  clearTimeout(deadline);
  process.exit(0);
} catch (e) {
  console.error(`[board e2e ${since()}] FAILED: ${e.stack || e}`);
  for (const page of boards) {
    const said = await page.evaluate(() => document.getElementById('messages').innerText).catch(() => '?');
    console.error(`---- messages on ${page.url()} ----\n${said}`);
  }
  for (const proc of children) {
    console.error(`---- last lines of ${proc.name} ----\n${proc.lines.slice(-60).join('\n')}`);
  }
  await cleanUp();
  clearTimeout(deadline);
  process.exit(1);
}
