// SPDX-License-Identifier: Apache-2.0
// Interop with the real, unmodified `replicache` npm client (15.3.0) in
// headless Debian Chromium, with its default IndexedDB store: a tiny page
// (bundled here with esbuild's JS API, served same-origin by `vellum serve
// --demo-dir`) runs Replicache with the mutators of common.ts. Two browser
// contexts (two client groups) mutate concurrently, go offline (Chromium's
// network emulation), keep mutating, come back and converge to the server's
// room state; raw pushes show replays append nothing and gaps are refused.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import type { Browser, BrowserContext, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { packageRoot, removeDataDir, startServer, type RunningServer } from '../support/server.js';
import { eventually, putSchema, rawPush, roomSeq, serverView } from './common.js';

const room = 'browser-interop';

const pageScript = `
import { Replicache } from 'replicache';
import { app, mutators } from './test/replicache/common.ts';

const params = new URLSearchParams(location.search);
const room = params.get('room');
const base = '/replicache/' + app + '/' + room;
const rep = new Replicache({
  name: params.get('name'),
  pushURL: base + '/push',
  pullURL: base + '/pull',
  pullInterval: 1000,
  pushDelay: 0,
  requestOptions: { minDelayMs: 20, maxDelayMs: 300 },
  mutators,
});
function connectPoke() {
  const ws = new WebSocket('ws://' + location.host + base + '/poke');
  ws.onmessage = () => void rep.pull();
  ws.onclose = () => setTimeout(connectPoke, 200);
}
connectPoke();
window.rc = {
  mutate: (name, args) => rep.mutate[name](args),
  view: async () => Object.fromEntries(await rep.query((tx) => tx.scan().entries().toArray())),
  pending: async () => (await rep.experimentalPendingMutations()).length,
  clientID: () => rep.clientID,
  clientGroupID: () => rep.clientGroupID,
};
document.body.dataset.ready = 'yes';
`;

let server: RunningServer;
let browser: Browser;
let site: string;

before(async () => {
  site = mkdtempSync(path.join(tmpdir(), 'vellum-rc-page-'));
  await build({
    stdin: { contents: pageScript, resolveDir: packageRoot, sourcefile: 'page.ts', loader: 'ts' },
    bundle: true,
    format: 'esm',
    platform: 'browser',
    target: 'es2022',
    outfile: path.join(site, 'app.js'),
    logLevel: 'error',
  });
  writeFileSync(path.join(site, 'index.html'),
    '<!doctype html><meta charset="utf-8"><title>replicache interop</title>' +
    '<body><script type="module" src="app.js"></script></body>');
  server = await startServer({ args: ['--demo-dir', site] });
  await putSchema(server.url);
  browser = await launchChromium();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (server) removeDataDir(server);
  rmSync(site, { recursive: true, force: true });
});

interface Tab {
  context: BrowserContext;
  page: Page;
  errors: string[];
}

async function open(name: string): Promise<Tab> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(String(error)));
  await page.goto(`${server.url}/demo/?room=${room}&name=${name}`);
  await page.waitForSelector('body[data-ready="yes"]', { state: 'attached', timeout: 15_000 });
  return { context, page, errors };
}

const mutate = (tab: Tab, name: string, args: unknown) =>
  tab.page.evaluate(([n, a]) => (window as any).rc.mutate(n, a), [name, args] as const);
const view = (tab: Tab) => tab.page.evaluate(() => (window as any).rc.view()) as Promise<Record<string, unknown>>;
const pending = (tab: Tab) => tab.page.evaluate(() => (window as any).rc.pending()) as Promise<number>;

async function converged(tabs: Tab[]): Promise<boolean> {
  const expected = await serverView(server.url, room);
  for (const tab of tabs) {
    if ((await pending(tab)) !== 0) return false;
    try {
      assert.deepEqual(await view(tab), expected);
    } catch {
      return false;
    }
  }
  return true;
}

test('two Chromium tabs (IndexedDB) mutate, go offline, come back and converge', async () => {
  const a = await open('browser-a');
  const b = await open('browser-b');
  try {
    await Promise.all([
      mutate(a, 'rename', { title: 'Lisbon' }),
      mutate(a, 'vote', { item: 'tram', n: 2 }),
      mutate(b, 'vote', { item: 'tram', n: 3 }),
      mutate(b, 'tag', { tag: 'sea' }),
    ]);
    await eventually('convergence', () => converged([a, b]));
    assert.deepEqual(await view(b), { '/title': 'Lisbon', '/votes/tram': 5, '/tags': ['sea'] });

    await a.context.setOffline(true);
    await b.context.setOffline(true);
    await Promise.all([
      mutate(a, 'vote', { item: 'tram', n: 10 }),
      mutate(a, 'tag', { tag: 'hills' }),
      mutate(b, 'rename', { title: 'Porto' }),
      mutate(b, 'vote', { item: 'wine', n: 1 }),
    ]);
    assert.equal((await view(a))['/votes/tram'], 15, 'optimistic while offline');
    assert.equal(await pending(b), 2);
    await new Promise((resolve) => setTimeout(resolve, 500));
    assert.equal((await serverView(server.url, room))['/votes/tram'], 5, 'nothing reached the server');
    await a.context.setOffline(false);
    await b.context.setOffline(false);
    await eventually('convergence after going back online', () => converged([a, b]), 30_000);
    assert.deepEqual(await view(a),
      { '/title': 'Porto', '/votes/tram': 15, '/votes/wine': 1, '/tags': ['hills', 'sea'] });

    const clientID = await a.page.evaluate(() => (window as any).rc.clientID()) as string;
    const group = await a.page.evaluate(() => (window as any).rc.clientGroupID()) as string;
    const seq = await roomSeq(server.url, room);
    const replay = await rawPush(server.url, room, group,
      [{ id: 1, clientID, name: 'rename', args: { title: 'Lisbon' } }]);
    assert.equal(replay.status, 200);
    assert.equal(await roomSeq(server.url, room), seq, 'the replay appended nothing');
    const gap = await rawPush(server.url, room, group,
      [{ id: 9, clientID, name: 'vote', args: { item: 'gap', n: 1 } }]);
    assert.equal(gap.status, 409);
    assert.equal(await roomSeq(server.url, room), seq, 'the gap appended nothing');
    assert.deepEqual(a.errors, []);
    assert.deepEqual(b.errors, []);
  } finally {
    await a.context.close();
    await b.context.close();
  }
});
