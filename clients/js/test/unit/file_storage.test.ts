// SPDX-License-Identifier: Apache-2.0
// FileOutboxStorage: round trips, torn and garbage tails, compaction, and a
// writer process SIGKILLed mid-stream — every acknowledged put is there after
// the crash, every acknowledged remove stays removed, nothing corrupt loads.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFileSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync,
  writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { encodeFrame, FILE_MAGIC, FileOutboxStorage } from '../../src/storage/file.js';
import type { CachedRoom } from '../../src/types.js';
import { writerRecord } from './file_storage_records.js';

const here = path.dirname(fileURLToPath(import.meta.url));
const directory = mkdtempSync(path.join(tmpdir(), 'vellum-outbox-'));
after(() => rmSync(directory, { recursive: true, force: true }));
let files = 0;
const freshFile = () => path.join(directory, `outbox-${++files}.log`);

const cachedRoom: CachedRoom = {
  app: 'trips', room: 'tokyo', participant: 'ann', schema: { policies: {}, actions: {} },
  schemaVersion: 2, seq: 14, clock: 9, reducerState: { version: 1, seqMax: 14 },
};

async function reopen(file: string): Promise<FileOutboxStorage> {
  const storage = new FileOutboxStorage(file);
  await storage.load();
  return storage;
}

async function loadedIds(file: string): Promise<string[]> {
  const storage = await reopen(file);
  const ids = (await storage.load()).map((record) => record.action.id);
  await storage.close();
  return ids.sort();
}

test('puts, removes and the room cache survive a reopen', async () => {
  const file = freshFile();
  const storage = new FileOutboxStorage(file);
  assert.deepEqual(await storage.load(), []);
  await storage.put([writerRecord(1), writerRecord(2)]);
  await storage.put([{ ...writerRecord(1), order: 7 }]);  // same id: replaced
  await storage.remove(['action-2', 'never-there']);
  await storage.saveRoom(cachedRoom);
  await storage.saveRoom({ ...cachedRoom, room: 'osaka', seq: 3 });
  await storage.close();

  const again = await reopen(file);
  assert.deepEqual(await again.load(), [{ ...writerRecord(1), order: 7 }]);
  assert.deepEqual(await again.loadRoom('trips', 'tokyo', 'ann'), cachedRoom);
  assert.equal((await again.loadRoom('trips', 'osaka', 'ann'))?.seq, 3);
  assert.equal(await again.loadRoom('trips', 'tokyo', 'bob'), undefined);
  assert.equal(again.recovery.droppedBytes, 0);
  await again.close();
});

test('a torn last frame is dropped on load and the file is rewritten without it', async () => {
  const file = freshFile();
  const storage = new FileOutboxStorage(file);
  await storage.put([writerRecord(1)]);
  await storage.put([writerRecord(2)]);
  await storage.close();
  const size = statSync(file).size;
  for (const cut of [1, 8, 20]) {
    const torn = freshFile();
    writeFileSync(torn, readFileSync(file).subarray(0, size - cut));
    const loaded = await reopen(torn);
    assert.deepEqual((await loaded.load()).map((r) => r.action.id), ['action-1'], `cut ${cut}`);
    assert.ok(loaded.recovery.droppedBytes > 0);
    await loaded.put([writerRecord(3)]);  // appended after the intact frames, not the tear
    await loaded.close();
    assert.deepEqual(await loadedIds(torn), ['action-1', 'action-3']);
    const clean = await reopen(torn);
    assert.equal(clean.recovery.droppedBytes, 0);
    await clean.close();
  }
});

test('garbage after the last frame never loads, whatever it looks like', async () => {
  const file = freshFile();
  const storage = new FileOutboxStorage(file);
  await storage.put([writerRecord(1)]);
  await storage.close();
  const good = readFileSync(file);
  const frame = encodeFrame({ op: 'put', records: [writerRecord(2)] });
  const badCrc = Uint8Array.from(frame);
  badCrc[4] = badCrc[4]! ^ 0xff;
  const badJson = encodeFrame('not a change');
  const badRecord = encodeFrame({ op: 'put', records: [{ app: 'trips' }] });
  const hugeLength = Uint8Array.from([0xff, 0xff, 0xff, 0x7f, 1, 2, 3, 4, 5]);
  const random = Uint8Array.from({ length: 300 }, (_, i) => (i * 7919 + 13) & 0xff);
  for (const tail of [badCrc, badJson, badRecord, hugeLength, random, frame.subarray(0, 30)]) {
    const damaged = freshFile();
    writeFileSync(damaged, good);
    appendFileSync(damaged, tail);
    assert.deepEqual(await loadedIds(damaged), ['action-1']);
  }
});

test('a file that is not an outbox is refused and left alone', async () => {
  const file = freshFile();
  writeFileSync(file, 'name,value\nann,1\n');
  const storage = new FileOutboxStorage(file);
  await assert.rejects(storage.load(), { code: 'data_loss' });
  assert.equal(readFileSync(file, 'utf8'), 'name,value\nann,1\n');
});

test('a file torn before its header was complete starts empty', async () => {
  const file = freshFile();
  writeFileSync(file, FILE_MAGIC.slice(0, 3));
  assert.deepEqual(await loadedIds(file), []);
  assert.equal(readFileSync(file, 'utf8'), FILE_MAGIC);
});

test('the log is compacted once it outgrows its content', async () => {
  const file = freshFile();
  const storage = new FileOutboxStorage(file, { compactAtBytes: 16 * 1024 });
  for (let n = 0; n < 400; n++) {
    await storage.put([writerRecord(n)]);
    if (n >= 5) await storage.remove([writerRecord(n - 5).action.id]);
  }
  await storage.saveRoom(cachedRoom);
  assert.ok(statSync(file).size < 48 * 1024, `size ${statSync(file).size}`);
  await storage.close();
  const ids = await loadedIds(file);
  assert.deepEqual(ids, [395, 396, 397, 398, 399].map((n) => `action-${n}`));
  const again = await reopen(file);
  assert.deepEqual(await again.loadRoom('trips', 'tokyo', 'ann'), cachedRoom);
  await again.close();
});

/** Runs the writer until it has acknowledged `puts` puts, then SIGKILLs it. */
async function writeUntilKilled(file: string, first: number, puts: number) {
  const child = spawn(process.execPath, [path.join(here, 'file_storage_writer.js'), file,
    String(first)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const acked = new Set<number>();
  const removing = new Set<number>();
  const removed = new Set<number>();
  const sets: Record<string, Set<number>> = { put: acked, removing, removed };
  let buffered = '';
  await new Promise<void>((resolve, reject) => {
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk: string) => {
      buffered += chunk;
      const lines = buffered.split('\n');
      buffered = lines.pop()!;
      for (const line of lines) {
        const [what, n] = line.split(' ');
        sets[what!]!.add(Number(n));
      }
      if (acked.size >= puts) child.kill('SIGKILL');
    });
    child.on('exit', (_code, signal) =>
      signal === 'SIGKILL' ? resolve() : reject(new Error(`writer exited: ${signal}`)));
  });
  return { acked, removing, removed };
}

test('a writer SIGKILLed mid-stream loses no acknowledged change, loads nothing torn', async () => {
  const file = freshFile();
  const acked = new Set<number>();
  const removing = new Set<number>();
  const removed = new Set<number>();
  let next = 0;
  for (const [round, puts] of [25, 110, 60, 300].entries()) {
    const result = await writeUntilKilled(file, next, puts);
    for (const n of result.acked) acked.add(n);
    for (const n of result.removed) removed.add(n);
    for (const n of result.removing) removing.add(n);
    next = Math.max(...acked) + 1000;  // ids of the next round never collide
    if (round === 2) appendFileSync(file, Uint8Array.from([0x10, 0, 0, 0, 0xde, 0xad]));

    const storage = await reopen(file);
    const loaded = await storage.load();
    const ids = new Set(loaded.map((record) => record.action.id));
    for (const n of acked) {
      // A remove that was under way at the kill may or may not have happened.
      if (removing.has(n)) continue;
      assert.ok(ids.has(`action-${n}`), `acknowledged put ${n} is lost`);
    }
    for (const n of removed) assert.ok(!ids.has(`action-${n}`), `removed ${n} came back`);
    for (const record of loaded) {
      // At most the one put in flight at the kill may be there unacknowledged.
      assert.deepEqual(record, writerRecord(record.order), 'a loaded record is intact');
    }
    await storage.close();
  }
});
