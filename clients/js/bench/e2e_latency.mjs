// SPDX-License-Identifier: Apache-2.0
// End-to-end latency of the trip planner: from a submit in one browser page to
// the render of that edit in another page (two contexts of one Chromium, so
// both read the same clock: performance.timeOrigin + performance.now()).
// The sender edits through the page's own controls (one edit every
// --interval-ms, under the server's default 50 submits/s per connection):
// by default it toggles its vote on one of 20 activities in turn (the room
// keeps its size); --mode add adds a new activity per edit instead (the list
// grows to 1,000 rows: a stress test of the page's rendering). The receiver
// records, with a MutationObserver, when each edit changes its DOM (after
// the render; paint not included).
//
//   npm run bench:e2e                 # 1,000 edits
//   npm run bench:e2e -- --smoke      # 50 edits (CI)
//   options: --mode vote|add --rows N --edits N --interval-ms MS --warmup N --json FILE
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
// vote: toggle votes on `--rows` activities (the room keeps its size);
// add: add a new activity per edit (the list grows to --edits rows).
const mode = option('--mode', 'vote');
const rows = Number(option('--rows', '20'));
if (mode !== 'vote' && mode !== 'add') throw new Error(`--mode vote|add, not ${mode}`);

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
  await page.waitForSelector('[data-testid="status"][data-status="live"]', {
    state: 'attached',
    timeout: 15_000,
  });
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

  // What the sender's client went through (rate limits, reconnects), for the report.
  await sender.page.evaluate(() => {
    const seen = { errors: {}, statuses: [] };
    window.__clientLog = seen;
    window.vellumDemo.client.on(
      'error',
      (e) => (seen.errors[e.code] = (seen.errors[e.code] ?? 0) + 1),
    );
    window.vellumDemo.client.on('status', (s) => seen.statuses.push(s));
  });

  // The receiver timestamps every change it renders: a new activity row
  // (mode add) or a changed vote count on a row (mode vote), keyed so that the
  // k-th change of a key is the k-th edit of that key.
  await receiver.page.evaluate(() => {
    const arrivals = {};
    window.__arrivals = arrivals;
    const list = document.querySelector('[data-testid="activity-list"]');
    const note = (key, now) => (arrivals[key] ??= []).push(now);
    new MutationObserver((records) => {
      const now = performance.timeOrigin + performance.now();
      for (const record of records) {
        if (record.type === 'attributes') {
          const row = record.target.closest('[data-testid="activity"]');
          const name = row?.querySelector('[data-testid="activity-name"]')?.textContent;
          if (
            name?.startsWith('vote-') &&
            record.target.getAttribute('data-voters') !== record.oldValue
          )
            note(name, now);
        } else {
          for (const node of record.addedNodes) {
            const name = node.querySelector?.('[data-testid="activity-name"]')?.textContent;
            if (name) note(name, now);
          }
        }
      }
    }).observe(list, {
      childList: true,
      subtree: true,
      attributes: true,
      attributeFilter: ['data-voters'],
      attributeOldValue: true,
    });
  });

  // The sender edits through the page's own controls, one edit every
  // intervalMs (catching up if a timer fires late), and timestamps each.
  const send = (mode, prefix, count) =>
    sender.page.evaluate(
      async ({ mode, prefix, count, intervalMs, rows }) => {
        const input = document.querySelector('[data-testid="activity-input"]');
        const form = document.querySelector('[data-testid="activity-form"]');
        const sent = {};
        const row = (name) =>
          [...document.querySelectorAll('[data-testid="activity"]')].find(
            (li) => li.querySelector('[data-testid="activity-name"]').textContent === name,
          );
        let next = performance.now();
        for (let i = 0; i < count; i++) {
          let key;
          if (mode === 'add') {
            key = `${prefix}${i}`;
            input.value = key;
            (sent[key] ??= []).push(performance.timeOrigin + performance.now());
            form.requestSubmit();
          } else {
            key = `${prefix}${i % rows}`;
            const vote = row(key).querySelector('[data-testid="vote"]');
            (sent[key] ??= []).push(performance.timeOrigin + performance.now());
            vote.click();
          }
          next += intervalMs;
          await new Promise((resolve) =>
            setTimeout(resolve, Math.max(0, next - performance.now())),
          );
        }
        return sent;
      },
      { mode, prefix, count, intervalMs, rows },
    );
  const waitArrivals = (sent, timeoutMs) =>
    receiver.page.waitForFunction(
      (sent) =>
        Object.entries(sent).every(
          ([key, times]) => (window.__arrivals[key]?.length ?? 0) >= times.length,
        ),
      sent,
      { timeout: timeoutMs, polling: 50 },
    );

  if (mode === 'vote') {
    // The activities to vote on, created (and seen by both) before measuring.
    const created = await send('add', 'vote-', rows);
    await waitArrivals(created, 30_000);
    await receiver.page.evaluate(() => {
      for (const key of Object.keys(window.__arrivals)) delete window.__arrivals[key];
    });
  }
  if (warmup > 0) {
    const sent = await send(mode, mode === 'add' ? 'add-warm-' : 'vote-', warmup);
    await waitArrivals(sent, 30_000);
    await receiver.page.evaluate(() => {
      for (const key of Object.keys(window.__arrivals)) delete window.__arrivals[key];
    });
  }
  const started = performance.now();
  const sent = await send(mode, mode === 'add' ? 'add-' : 'vote-', edits);
  await waitArrivals(sent, 120_000);
  const wallS = (performance.now() - started) / 1000;
  const arrivals = await receiver.page.evaluate(() => window.__arrivals);
  const pairs = Object.entries(sent).flatMap(([key, times]) =>
    times.map((t, k) => [key, k, t, arrivals[key][k]]),
  );
  const latencies = pairs.map(([, , t, arrived]) => arrived - t).sort((a, b) => a - b);

  // Where the time goes: submit -> commit (the server's serverTime stamp, wall
  // clock like timeOrigin) and commit -> render, matched the same way.
  const commits = {};
  const names = {};
  for (let after = 0; ;) {
    const page = await (
      await fetch(`${server.url}/rooms/trips/${room}/events?after=${after}&limit=1000`)
    ).json();
    if (page.events.length === 0) break;
    for (const e of page.events) {
      const ms = Number(BigInt(e.serverTime) / 1000n) / 1000;
      if (e.action === 'activity_added') names[e.payload.activityId] = e.payload.name;
      const key = e.action === 'activity_added' ? e.payload.name : names[e.payload?.activityId];
      if (key && (e.action === 'activity_added') === (mode === 'add'))
        (commits[key] ??= []).push(ms);
    }
    after = page.events[page.events.length - 1].seq;
  }
  const toCommit = [];
  const toRender = [];
  for (const [key, k, t, arrived] of pairs) {
    // In vote mode the first `warmup` commits of the keys were the warm-up edits.
    const offset =
      mode === 'vote'
        ? Math.floor(warmup / rows) + (Number(key.slice(5)) < warmup % rows ? 1 : 0)
        : 0;
    const committed = commits[key]?.[k + offset];
    if (committed === undefined) continue;
    toCommit.push(committed - t);
    toRender.push(arrived - committed);
  }
  toCommit.sort((a, b) => a - b);
  toRender.sort((a, b) => a - b);
  const stats = await sender.page.evaluate(() => ({ ...window.vellumDemo.client.stats }));
  const clientLog = await sender.page.evaluate(() => window.__clientLog);
  const result = {
    bench: 'e2e_latency',
    mode,
    rows: mode === 'vote' ? rows : undefined,
    edits,
    intervalMs,
    warmup,
    wallSeconds: Number(wallS.toFixed(2)),
    p50Ms: Number(quantile(latencies, 0.5).toFixed(2)),
    p90Ms: Number(quantile(latencies, 0.9).toFixed(2)),
    p99Ms: Number(quantile(latencies, 0.99).toFixed(2)),
    maxMs: Number(latencies[latencies.length - 1].toFixed(2)),
    meanMs: Number((latencies.reduce((a, b) => a + b, 0) / latencies.length).toFixed(2)),
    submitToCommitMs: {
      p50: Number(quantile(toCommit, 0.5).toFixed(2)),
      p99: Number(quantile(toCommit, 0.99).toFixed(2)),
    },
    commitToRenderMs: {
      p50: Number(quantile(toRender, 0.5).toFixed(2)),
      p99: Number(quantile(toRender, 0.99).toFixed(2)),
    },
    senderStats: stats,
    senderLog: clientLog,
    machine:
      `${os.cpus().length} × ${os.cpus()[0]?.model ?? 'cpu'}, ${os.platform()}` +
      ` ${os.release()}`,
    chromium: browser.version(),
    chromiumPath,
    vellum: vellumBinary(),
  };
  console.log(
    `e2e latency, submit in one page -> render in another, ${edits} edits` +
      ` (${mode === 'vote' ? `votes on ${rows} activities` : 'new activities'})` +
      ` every ${intervalMs} ms:` +
      ` p50 ${result.p50Ms} ms, p90 ${result.p90Ms} ms, p99 ${result.p99Ms} ms,` +
      ` max ${result.maxMs} ms` +
      ` (submit->commit p50 ${result.submitToCommitMs.p50}` +
      ` / p99 ${result.submitToCommitMs.p99} ms,` +
      ` commit->render p50 ${result.commitToRenderMs.p50} / p99 ${result.commitToRenderMs.p99} ms)`,
  );
  console.log(JSON.stringify(result));
  if (jsonOut) writeFileSync(jsonOut, JSON.stringify(result, null, 2) + '\n');
  const errors = [...sender.errors, ...receiver.errors];
  if (errors.length) {
    console.error('page errors:', errors);
    failed = true;
  }
  if (latencies.length !== edits || !latencies.every(Number.isFinite)) {
    console.error(`measured ${latencies.length} of ${edits} edits`);
    failed = true;
  }
  if (toCommit.length !== edits)
    console.error(`matched ${toCommit.length} of ${edits} edits to their commits`);
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
