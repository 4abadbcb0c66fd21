// What holdfast's Node tests share: a throw-away database and a private Redis
// queue, the real holdfast-server (and holdfast-worker) binaries started on
// them, Chromium launched the way CI can run it, and a clean-up that stops
// everything and removes the database and the Redis keys, whatever happened.
// A test calls `run(name, deadlineMs, main)`, which does that and exits 0 or 1.

import { execFile, spawn } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';

export const runFile = promisify(execFile);
export const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const env = process.env;
export const SERVER_BIN = env.HOLDFAST_SERVER_BIN || path.join(root, 'target/debug/holdfast-server');
export const WORKER_BIN = env.HOLDFAST_WORKER_BIN || path.join(root, 'target/debug/holdfast-worker');
export const CHROMIUM = env.HOLDFAST_CHROMIUM || '/usr/bin/chromium';
const PG = (env.HOLDFAST_TEST_PG || 'postgres://postgres@127.0.0.1:5432').replace(/\/+$/, '');
const REDIS = env.HOLDFAST_TEST_REDIS || 'redis://127.0.0.1:6379';

export const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

export function freePort() {
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

/** Fails, naming what to do, when a binary or the browser is missing. */
export function requireFiles(files) {
  for (const [what, file] of files) {
    if (!fs.existsSync(file)) throw new Error(`${what} is missing at ${file} (build with cargo, and run scripts/e2e-setup.sh)`);
  }
}

/** One test's database, queue and processes. */
export function createStack(label) {
  const suffix = crypto.randomBytes(6).toString('hex');
  const dbName = `hf_e2e_${suffix}`;
  const queue = `hf_e2e_${suffix}`;
  const children = [];
  const started = Date.now();
  const since = () => `${((Date.now() - started) / 1000).toFixed(1)}s`;

  const stack = {
    dbName,
    queue,
    children,
    /** Closed, with the browser, by cleanUp. */
    browser: null,
    log: (...args) => console.log(`[${label} ${since()}]`, ...args),
    since,

    baseEnv(extra) {
      return {
        ...env,
        DATABASE_URL: `${PG}/${dbName}`,
        REDIS_URL: REDIS,
        HOLDFAST_QUEUE: queue,
        HOLDFAST_ENV: 'development',
        HOLDFAST_LOG_FORMAT: 'pretty',
        RUST_LOG: env.RUST_LOG || 'info',
        NO_COLOR: '1',
        ...extra,
      };
    },

    /** `holdfast-server migrate` on the throw-away database. */
    async migrate(extraEnv) {
      await runFile(SERVER_BIN, ['migrate'], { env: stack.baseEnv(extraEnv) });
    },

    /** `holdfast-server seed-demo`: the demo users' tokens by first name, and the project's id. */
    async seedDemo(extraEnv) {
      const { stdout } = await runFile(SERVER_BIN, ['seed-demo', '--no-holds'], { env: stack.baseEnv(extraEnv) });
      const tokens = {};
      for (const m of stdout.matchAll(/(\S+)@demo\.holdfast\.test\s+(\S+)\s*$/gm)) tokens[m[1]] = m[2];
      const projectId = (stdout.match(/project "Riverside Gardens" \(([0-9a-f-]{36})\)/) || [])[1];
      return { tokens, projectId, output: stdout };
    },

    /** A long-running binary whose output is kept, and shown when the test fails. */
    start(name, bin, extraEnv) {
      const child = spawn(bin, [], { env: stack.baseEnv(extraEnv), stdio: ['ignore', 'pipe', 'pipe'] });
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
    },

    /** holdfast-server on a free port, answering /healthz; its base URL. */
    async startServer(extraEnv) {
      const port = await freePort();
      const server = stack.start('server', SERVER_BIN, { HOLDFAST_LISTEN: `127.0.0.1:${port}`, ...extraEnv });
      const base = `http://127.0.0.1:${port}`;
      await waitForHttp(`${base}/healthz`, server);
      return { server, base };
    },

    async cleanUp() {
      if (stack.cleaned) return;
      stack.cleaned = true;
      if (stack.browser) await stack.browser.close().catch(() => {});
      await Promise.all(children.map(stop));
      try {
        await runFile('psql', [`${PG}/postgres`, '-v', 'ON_ERROR_STOP=1', '-qc', `DROP DATABASE IF EXISTS "${dbName}" WITH (FORCE)`]);
      } catch (e) {
        console.error(`could not drop the database ${dbName}: ${e.message}`);
      }
      try {
        const { stdout } = await runFile('redis-cli', ['-u', REDIS, '--scan', '--pattern', `*${queue}*`]);
        const keys = stdout.split('\n').filter(Boolean);
        for (let i = 0; i < keys.length; i += 100) {
          await runFile('redis-cli', ['-u', REDIS, 'DEL', ...keys.slice(i, i + 100)]);
        }
      } catch (e) {
        console.error(`could not delete the Redis keys of ${queue}: ${e.message}`);
      }
    },
  };
  return stack;
}

export async function stop(proc) {
  if (proc.exited) return;
  const gone = new Promise((resolve) => proc.child.once('exit', resolve));
  proc.child.kill('SIGTERM');
  const timer = setTimeout(() => proc.child.kill('SIGKILL'), 5000);
  await gone;
  clearTimeout(timer);
}

export async function waitForHttp(url, proc, timeoutMs = 30_000) {
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

/** POSTs a GraphQL request; the whole body (data and errors). */
export async function post(base, token, query, variables = {}) {
  const headers = { 'Content-Type': 'application/json' };
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(`${base}/graphql`, { method: 'POST', headers, body: JSON.stringify({ query, variables }) });
  return res.json();
}

/** `data` of a GraphQL request that must succeed. */
export async function gql(base, token, query, variables = {}) {
  const body = await post(base, token, query, variables);
  if (body.errors) throw new Error(`GraphQL: ${JSON.stringify(body.errors)}`);
  return body.data;
}

/** Chromium, headless, with what CI needs and nothing that calls home; `args` adds flags. */
export async function launchChromium(stack, { args = [] } = {}) {
  const { chromium } = await import('playwright-core');
  stack.browser = await chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', ...args],
  });
  return stack.browser;
}

/**
 * Runs `main(stack)` within `deadlineMs`, then cleans up and exits 0, or
 * prints why it failed (and `onFailure`'s account, and the processes' last
 * lines), cleans up and exits 1.
 */
export async function run(label, deadlineMs, main, onFailure = async () => {}) {
  const stack = createStack(label);
  const deadline = setTimeout(async () => {
    console.error(`[${label}] FAILED: not done within ${deadlineMs / 1000} s`);
    await stack.cleanUp();
    process.exit(1);
  }, deadlineMs);
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, async () => {
      await stack.cleanUp();
      process.exit(1);
    });
  }
  try {
    await main(stack);
    stack.log('PASSED');
    await stack.cleanUp();
    clearTimeout(deadline);
    process.exit(0);
  } catch (e) {
    console.error(`[${label} ${stack.since()}] FAILED: ${e.stack || e}`);
    await onFailure().catch((err) => console.error(`(could not say more: ${err.message})`));
    for (const proc of stack.children) {
      console.error(`---- last lines of ${proc.name} ----\n${proc.lines.slice(-60).join('\n')}`);
    }
    await stack.cleanUp();
    clearTimeout(deadline);
    process.exit(1);
  }
}
