// SPDX-License-Identifier: Apache-2.0
// End-to-end latency of the trip planner: from a submit in one browser page to
// the render of that edit in another page (two contexts of one Chromium, so
// both read the same clock: performance.timeOrigin + performance.now()).
// The sender adds activities through the page's own form (one every
// --interval-ms, under the server's default 50 submits/s per connection);
// the receiver records, with a MutationObserver on the activity list, when
// each one's row is added to its DOM (after the render; paint not included).
//
//   npm run bench:e2e                 # 1,000 edits
//   npm run bench:e2e -- --smoke      # 50 edits (CI)
//   options: --edits N --interval-ms MS --warmup N --json FILE
import { existsSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { launchChromium, chromiumPath } from '../dist/test/support/browser.js';
import { removeDataDir, startServer, vellumBinary } from '../dist/test/support/server.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const demoDist = path.join(here, '..', 'demo', 'dist');

function option(name, fallback) {
  const i = process.argv.indexOf(name);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1] : fallback;
}
const smoke = process.argv.includes('--smoke');
const edits = Number(option('--edits', smoke ? '50' : '1000'));
const intervalMs = Number(option('--interval-ms', '30'));
const warmup = Number(option('--warmup', smoke ? '5' : '20'));
const jsonOut = option('--json', undefined);

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[i];
}

async function openPage(browser, url) {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector('[data-testid="status"][data-status="live"]', { state: 'attached', timeout: 15_000 });
  return { context, page, errors };
}

if (!existsSync(path.join(demoDist, 'index.html'))) {
  console.error(`no demo build in ${demoDist}: run npm run build:demo`);
  process.exit(2);
}

const server = await startServer({ args: ['--demo-dir', demoDist] });
const browser = await launchChromium();
let failed = false;
try {
  const room = `e2e-${Date.now()}`;
  const base = `${server.url}/demo/?room=${room}`;
  const sender = await openPage(browser, `${base}&name=Sender`);
  const receiver = await openPage(browser, `${base}&name=Receiver`);

  await receiver.page.evaluate(() => {
    const arrivals = {};
    window.__arrivals = arrivals;
    const list = document.querySelector('[data-testid="activity-list"]');
    new MutationObserver((records) => {
      const now = performance.timeOrigin + performance.now();
      for (const record of records) {
        for (const node of record.addedNodes) {
          const name = node.querySelector?.('[data-testid="activity-name"]')?.textContent;
          if (name && !(name in arrivals)) arrivals[name] = now;
        }
      }
    }).observe(list, { childList: true });
  });

  const send = (prefix, count) =>
    sender.page.evaluate(
      async ({ prefix, count, intervalMs }) => {
        const input = document.querySelector('[data-testid="activity-input"]');
        const form = document.querySelector('[data-testid="activity-form"]');
        const sent = {};
        let next = performance.now();
        for (let i = 0; i < count; i++) {
          const name = `${prefix}${i}`;
          input.value = name;
          sent[name] = performance.timeOrigin + performance.now();
          form.requestSubmit();
          next += intervalMs;
          await new Promise((resolve) => setTimeout(resolve, Math.max(0, next - performance.now())));
        }
        return sent;
      },
      { prefix, count, intervalMs },
    );
  const waitArrivals = (names, timeoutMs) =>
    receiver.page.waitForFunction((names) => names.every((n) => n in window.__arrivals), names, {
      timeout: timeoutMs,
      polling: 50,
    });

  if (warmup > 0) {
    const sent = await send('warm-', warmup);
    await waitArrivals(Object.keys(sent), 30_000);
  }
  const started = performance.now();
  const sent = await send('e2e-', edits);
  await waitArrivals(Object.keys(sent), 60_000);
  const wallS = (performance.now() - started) / 1000;
  const arrivals = await receiver.page.evaluate(() => window.__arrivals);
  const latencies = Object.entries(sent)
    .map(([name, t]) => arrivals[name] - t)
    .sort((a, b) => a - b);
  // Where the time goes: submit -> commit (the server's serverTime stamp, wall
  // clock like timeOrigin) and commit -> render.
  const committedAt = {};
  for (let after = 0; ; ) {
    const page = await (await fetch(`${server.url}/rooms/trips/${room}/events?after=${after}&limit=1000`)).json();
    if (page.events.length === 0) break;
    for (const e of page.events) {
      if (e.action === 'activity_added') committedAt[e.payload.name] = Number(BigInt(e.serverTime) / 1000n) / 1000;
    }
    after = page.events[page.events.length - 1].seq;
  }
  const toCommit = Object.entries(sent).map(([name, t]) => committedAt[name] - t).sort((a, b) => a - b);
  const toRender = Object.keys(sent).map((name) => arrivals[name] - committedAt[name]).sort((a, b) => a - b);
  const stats = await sender.page.evaluate(() => ({ ...window.vellumDemo.client.stats }));
  const result = {
    bench: 'e2e_latency',
    edits,
    intervalMs,
    warmup,
    wallSeconds: Number(wallS.toFixed(2)),
    p50Ms: Number(quantile(latencies, 0.5).toFixed(2)),
    p90Ms: Number(quantile(latencies, 0.9).toFixed(2)),
    p99Ms: Number(quantile(latencies, 0.99).toFixed(2)),
    maxMs: Number(latencies[latencies.length - 1].toFixed(2)),
    meanMs: Number((latencies.reduce((a, b) => a + b, 0) / latencies.length).toFixed(2)),
    submitToCommitMs: { p50: Number(quantile(toCommit, 0.5).toFixed(2)), p99: Number(quantile(toCommit, 0.99).toFixed(2)) },
    commitToRenderMs: { p50: Number(quantile(toRender, 0.5).toFixed(2)), p99: Number(quantile(toRender, 0.99).toFixed(2)) },
    senderStats: stats,
    machine: `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.platform()} ${os.release()}`,
    chromium: browser.version(),
    chromiumPath,
    vellum: vellumBinary(),
  };
  console.log(
    `e2e latency, submit in one page -> render in another, ${edits} edits every ${intervalMs} ms:` +
      ` p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms, p99 ${result.p99Ms} ms, max ${result.maxMs} ms` +
      ` (submit->commit p50 ${result.submitToCommitMs.p50} / p99 ${result.submitToCommitMs.p99} ms,` +
      ` commit->render p50 ${result.commitToRenderMs.p50} / p99 ${result.commitToRenderMs.p99} ms)`,
  );
  console.log(JSON.stringify(result));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + '\n');
  const errors = [...sender.errors, ...receiver.errors];
  if (errors.length) {
    console.error('page errors:', errors);
    failed = true;
  }
  if (latencies.length !== edits || !Number.isFinite(result.p99Ms)) failed = true;
} catch (error) {
  console.error(error);
  console.error(server.logTail());
  failed = true;
} finally {
  await browser.close();
  await server.stop();
  removeDataDir(server);
}
process.exit(failed ? 1 : 0);
