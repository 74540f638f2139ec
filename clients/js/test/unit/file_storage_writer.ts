// SPDX-License-Identifier: Apache-2.0
// Child process of file_storage.test.ts (not a test itself): puts records into
// a FileOutboxStorage as fast as it can and prints "put <n>" once a put has
// resolved, "removing <n>" before a remove and "removed <n>" once it has
// resolved, until it is SIGKILLed.
// Usage: node file_storage_writer.js <file> <first n>
import { FileOutboxStorage } from '../../src/storage/file.js';
import { writerRecord } from './file_storage_records.js';

async function main(file: string, first: number): Promise<void> {
  const storage = new FileOutboxStorage(file, { compactAtBytes: 64 * 1024 });
  await storage.load();
  for (let n = first; ; n++) {
    await storage.put([writerRecord(n)]);
    process.stdout.write(`put ${n}\n`);
    if (n % 3 === 0 && n > first) {
      process.stdout.write(`removing ${n - 1}\n`);  // from now on either state is right
      await storage.remove([writerRecord(n - 1).action.id]);
      process.stdout.write(`removed ${n - 1}\n`);
    }
  }
}

const [file, first] = process.argv.slice(2);
if (file !== undefined) void main(file, Number(first ?? 0));
