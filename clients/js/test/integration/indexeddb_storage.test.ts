// SPDX-License-Identifier: Apache-2.0
// IndexedDbOutboxStorage in Debian's Chromium: what was put survives a page
// reload, removes stick, and the room cache is keyed by (app, room, participant).
import assert from 'node:assert/strict';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { build } from 'esbuild';
import type { Browser, Page } from 'playwright-core';
import { launchChromium } from '../support/browser.js';
import { packageRoot } from '../support/server.js';

let browser: Browser;
let site: http.Server;
let page: Page;

before(async () => {
  const bundle = await build({
    entryPoints: [path.join(packageRoot, 'src', 'storage', 'indexeddb.ts')],
    bundle: true, format: 'esm', write: false, platform: 'browser',
  });
  const code = bundle.outputFiles[0]!.text;
  site = http.createServer((request, response) => {
    const script = request.url === '/idb.js';
    response.setHeader('content-type', script ? 'text/javascript' : 'text/html');
    response.end(script ? code : '<!doctype html><title>outbox</title>');
  });
  await new Promise<void>((resolve) => site.listen(0, '127.0.0.1', resolve));
  browser = await launchChromium();
  page = await browser.newPage();
  await page.goto(`http://127.0.0.1:${(site.address() as AddressInfo).port}/`);
});
after(async () => {
  await browser?.close();
  site?.close();
});

/** Runs `body` in the page with `storage` (a fresh IndexedDbOutboxStorage). */
function inPage(body: string): Promise<unknown> {
  return page.evaluate(`(async () => {
    const { IndexedDbOutboxStorage } = await import('/idb.js');
    const storage = new IndexedDbOutboxStorage();
    const record = (n) => ({ app: 'trips', room: 'tokyo', participant: 'ann', order: n,
      action: { id: 'id-' + n, action: 'liked', payload: { n }, lamport: n, clientTime: 0 } });
    try { ${body} } finally { await storage.close(); }
  })()`);
}

test('records and the room cache survive a reload; removes stick', async () => {
  await inPage(`
    await storage.put([record(1), record(2), record(3)]);
    await storage.put([{ ...record(1), order: 9 }]);
    await storage.remove(['id-2']);
    await storage.saveRoom({ app: 'trips', room: 'tokyo', participant: 'ann', schema: {},
      schemaVersion: 1, seq: 5, clock: 3, reducerState: { version: 1 } });`);
  await page.reload();
  const loaded = (await inPage(`
    const records = await storage.load();
    return { records, room: await storage.loadRoom('trips', 'tokyo', 'ann'),
      other: (await storage.loadRoom('trips', 'tokyo', 'bob')) ?? null };`)) as {
    records: Array<{ order: number; action: { id: string } }>;
    room: { seq: number } | undefined;
    other: null;
  };
  assert.deepEqual(loaded.records.map((r) => [r.action.id, r.order]).sort(),
    [['id-1', 9], ['id-3', 3]]);
  assert.equal(loaded.room?.seq, 5);
  assert.equal(loaded.other, null);
});
