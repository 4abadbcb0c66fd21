// GraphiQL in a real headless Chromium, offline: every request to another
// origin is blocked (and recorded), against the real holdfast-server binary on
// a throw-away database. Opened with a demo agent's token in the link, it
// moves the token into the Headers pane (and out of the address bar), loads
// the schema (the docs explorer lists reserveProperty), opens a dialog (whose
// style element the page's nonce allows), runs a query, and runs
// a propertyChanged subscription over /graphql/ws that shows a reservation
// made meanwhile over HTTP. No request leaves the server's origin, the
// Content-Security-Policy is never violated, and no script fails.
//
// Run: `node e2e/graphiql.test.mjs` (after `scripts/e2e-setup.sh` and a
// `cargo build`), or through `cargo nextest run -p holdfast-server --test board`.
// Saves a screenshot to target/graphiql.png (or HOLDFAST_GRAPHIQL_SCREENSHOT).

import assert from 'node:assert/strict';
import path from 'node:path';

import {
  CHROMIUM, SERVER_BIN, gql, launchChromium, requireFiles, root, run, sleep,
} from './harness.mjs';

const SCREENSHOT = process.env.HOLDFAST_GRAPHIQL_SCREENSHOT || path.join(root, 'target/graphiql.png');
const ASSETS = ['start.js', 'page.css', 'graphiql.min.js', 'graphiql.min.css',
  'react.production.min.js', 'react-dom.production.min.js', 'graphql-ws.min.js'];

let page = null;
/** The Headers pane's editor: the visible one under the query (the page opens it, not Variables). */
const HEADERS = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';

/** The text of one of GraphiQL's editors (CodeMirror 5 keeps itself on its element). */
function editorText(which) {
  return page.evaluate((selector) => {
    const el = document.querySelector(`${selector} .CodeMirror`);
    return el && el.CodeMirror ? el.CodeMirror.getValue() : null;
  }, which);
}

/** Puts `text`, an operation named `name`, in the query editor. */
async function setQuery(text, name) {
  await page.evaluate((value) => {
    document.querySelector('.graphiql-query-editor .CodeMirror').CodeMirror.setValue(value);
  }, text);
  // GraphiQL parses the editor's text a moment later, and names the tab
  // after its operation: until then, Run would offer the operations of the
  // text before (the welcome text has two).
  await page.locator('.graphiql-tab-active').getByText(name, { exact: true }).waitFor({ timeout: 5000 });
}

/** Waits until the result pane's text passes `test`; returns it. */
async function waitForResult(test, what, timeoutMs) {
  const until = Date.now() + timeoutMs;
  let text = '';
  while (Date.now() < until) {
    text = (await editorText('.graphiql-response')) || '';
    if (test(text)) return text;
    await sleep(50);
  }
  throw new Error(`the result pane did not show ${what} within ${timeoutMs} ms; it shows:\n${text}`);
}

async function subscribers(base) {
  const text = await (await fetch(`${base}/metrics`)).text();
  const line = text.split('\n').find((l) => l.startsWith('holdfast_subscribers_connected'));
  return line ? Number(line.split(/\s+/).pop()) : 0;
}

await run('graphiql e2e', 120_000, async (stack) => {
  requireFiles([['holdfast-server', SERVER_BIN], ['Chromium', CHROMIUM]]);
  await stack.migrate();
  const { tokens, projectId, output } = await stack.seedDemo();
  assert.ok(tokens.alice && tokens.bob && projectId, `seed-demo's output was not understood:\n${output}`);
  const { base } = await stack.startServer();
  stack.log(`server at ${base}`);

  // The page and its assets, from the server itself, under a strict policy.
  const head = await fetch(`${base}/graphql`);
  assert.equal(head.status, 200);
  assert.match(head.headers.get('content-type'), /^text\/html/);
  const csp = head.headers.get('content-security-policy') || '';
  assert.match(csp, /default-src 'none'/);
  assert.match(csp, /script-src 'self';/);
  const nonce = (csp.match(/style-src 'self' 'nonce-([A-Za-z0-9_-]{40,})';/) || [])[1];
  assert.ok(nonce, `GraphiQL's one style element is allowed by a nonce: ${csp}`);
  assert.doesNotMatch(csp, /unsafe/, 'no unsafe-eval or unsafe-inline');
  const html = await head.text();
  assert.ok(html.includes(`nonce="${nonce}"`), 'the page hands its nonce to start.js');
  assert.doesNotMatch(html, /https?:\/\//, 'the page names no other origin');
  const again = (await fetch(`${base}/graphql`)).headers.get('content-security-policy');
  assert.ok(!again.includes(nonce), 'a nonce of its own for each page');
  for (const asset of ASSETS) {
    const res = await fetch(`${base}/graphql/assets/${asset}`);
    assert.equal(res.status, 200, asset);
    assert.match(res.headers.get('content-security-policy'), /^default-src 'none'; script-src 'self'; style-src 'self';/, asset);
  }

  const browser = await launchChromium(stack);
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  // Offline: anything for another origin is refused, and recorded.
  const foreign = [];
  await context.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith(`${base}/`)) return route.continue();
    foreign.push(url);
    return route.abort('blockedbyclient');
  });
  context.on('request', (r) => { if (!r.url().startsWith(`${base}/`)) foreign.push(r.url()); });
  await context.addInitScript(() => {
    window.cspViolations = [];
    document.addEventListener('securitypolicyviolation', (e) => {
      window.cspViolations.push(`${e.violatedDirective}: ${e.blockedURI} (${e.sourceFile}:${e.lineNumber})`);
    });
  });

  page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(`page error: ${e.message}`));
  page.on('console', (m) => { if (m.type() === 'error') errors.push(`console error: ${m.text()}`); });
  const sockets = [];
  page.on('websocket', (ws) => {
    const socket = { url: ws.url(), sent: [], received: [] };
    ws.on('framesent', (f) => socket.sent.push(String(f.payload)));
    ws.on('framereceived', (f) => socket.received.push(String(f.payload)));
    sockets.push(socket);
  });

  // A link with the token in its fragment, as `just dev` prints it.
  const t0 = Date.now();
  await page.goto(`${base}/graphql#token=${encodeURIComponent(tokens.alice)}`);
  await page.waitForSelector('.graphiql-container', { timeout: 30_000 });
  assert.ok(!page.url().includes('token'), `the token must leave the address bar, got ${page.url()}`);
  const headers = JSON.parse(await editorText(HEADERS));
  assert.deepEqual(headers, { Authorization: `Bearer ${tokens.alice}` }, 'the token is in the Headers pane');
  stack.log(`GraphiQL loaded in ${Date.now() - t0} ms, Alice's token in its Headers pane`);

  // The schema came through introspection: the docs explorer lists the mutations.
  await page.getByRole('button', { name: /Show Documentation Explorer/i }).click();
  const docs = page.locator('.graphiql-doc-explorer');
  await docs.getByText('Mutation', { exact: true }).click({ timeout: 15_000 });
  await docs.getByText('reserveProperty', { exact: true }).first().waitFor({ timeout: 10_000 });
  stack.log('the docs explorer lists reserveProperty');

  // A dialog adds GraphiQL's one style element, allowed by the page's nonce.
  await page.getByRole('button', { name: /Open settings dialog/i }).click();
  await page.getByRole('dialog').waitFor({ timeout: 5000 });
  assert.ok(await page.evaluate(() => [...document.querySelectorAll('style')].some((el) => el.nonce)),
    'the dialog\'s style element carries the nonce');
  await page.keyboard.press('Escape');
  await page.getByRole('dialog').waitFor({ state: 'detached', timeout: 5000 });

  // A query, run with the token from the Headers pane.
  await setQuery(`query Plots {
  project(id: "${projectId}") { name availablePlots properties(first: 3) { nodes { id code status } } }
}`, 'Plots');
  await page.getByRole('button', { name: /Execute query/i }).click();
  const queried = JSON.parse(await waitForResult((t) => t.includes('availablePlots'), 'the query\'s answer', 15_000));
  assert.equal(queried.errors, undefined, JSON.stringify(queried));
  assert.equal(queried.data.project.name, 'Riverside Gardens');
  const plots = queried.data.project.properties.nodes;
  assert.equal(plots.length, 3);
  stack.log(`the query answered: ${queried.data.project.availablePlots} plots available, first ${plots[0].code}`);

  // A subscription over /graphql/ws; a reservation made over HTTP shows up.
  await setQuery(`subscription Changes($id: ID) {
  propertyChanged(projectId: $id) { property { code status } previousStatus status at }
}`, 'Changes');
  const before = await subscribers(base);
  await page.getByRole('button', { name: /Execute query/i }).click();
  for (const until = Date.now() + 10_000; await subscribers(base) <= before; await sleep(50)) {
    assert.ok(Date.now() < until, 'GraphiQL\'s subscription did not reach the server within 10 s');
  }
  assert.equal(sockets.length, 1, 'one WebSocket');
  assert.equal(sockets[0].url, `${base.replace('http', 'ws')}/graphql/ws`);
  const init = JSON.parse(sockets[0].sent[0]);
  assert.deepEqual(init, { type: 'connection_init', payload: { Authorization: `Bearer ${tokens.alice}` } },
    'the Headers pane is the connection_init payload');
  const target = plots.find((p) => p.status === 'AVAILABLE');
  const reservedAt = Date.now();
  await gql(base, tokens.bob, 'mutation($id: ID!) { reserveProperty(propertyId: $id) { id } }', { id: target.id });
  const change = JSON.parse(await waitForResult((t) => t.includes(target.code), `${target.code}'s change`, 5000));
  assert.deepEqual(change.data.propertyChanged.property, { code: target.code, status: 'RESERVED' });
  assert.equal(change.data.propertyChanged.previousStatus, 'AVAILABLE');
  stack.log(`Bob's reservation of ${target.code} over HTTP showed in GraphiQL's result pane after ${Date.now() - reservedAt} ms`);
  await page.screenshot({ path: SCREENSHOT });
  stack.log(`screenshot saved to ${path.relative(root, SCREENSHOT)}`);

  // Stopping it ends the subscription on the server.
  await page.getByRole('button', { name: /Stop query/i }).click();
  for (const until = Date.now() + 10_000; await subscribers(base) > before; await sleep(50)) {
    assert.ok(Date.now() < until, 'the subscription did not end within 10 s of Stop');
  }

  // The token was not written to the browser's storage, though the history
  // keeps both operations.
  const stored = await page.evaluate(() => ({ ...window.localStorage }));
  assert.ok(!Object.values(stored).join('\n').includes(tokens.alice), 'the token is not kept in localStorage');
  const history = JSON.parse(stored['graphiql:queries']).queries.map((q) => q.operationName);
  assert.deepEqual(history.sort(), ['Changes', 'Plots'], 'the history keeps the operations run');

  assert.deepEqual(foreign, [], 'GraphiQL asks nothing of another origin');
  assert.deepEqual(await page.evaluate(() => window.cspViolations), [], 'no Content-Security-Policy violation');
  assert.deepEqual(errors, [], 'no script errors in the page');
  for (const proc of stack.children) {
    assert.equal(proc.exited, null, `${proc.name} is still running`);
    assert.ok(!proc.lines.some((l) => l.includes('panicked')), `${proc.name} panicked`);
  }
}, async () => {
  if (page) {
    await page.screenshot({ path: SCREENSHOT }).catch(() => {});
    console.error(`---- the result pane ----\n${await editorText('.graphiql-response').catch(() => '?')}`);
    console.error(`(screenshot of the page: ${path.relative(root, SCREENSHOT)})`);
  }
});
