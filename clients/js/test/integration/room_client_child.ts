// SPDX-License-Identifier: Apache-2.0
// Child process of room_client_offline.test.ts (not a test itself): joins a
// room with a FileOutboxStorage, goes offline, submits actions, and prints
// their ids once they are durable in the outbox; the test then SIGKILLs it.
// Usage: node room_client_child.js <server url> <app> <room> <outbox file> <count>
import { RoomClient } from '../../src/room_client.js';
import { FileOutboxStorage } from '../../src/storage/file.js';

async function main(url: string, app: string, room: string, file: string, count: number) {
  const storage = new FileOutboxStorage(file);
  const client = await RoomClient.open({ url, app, room, participant: 'carol', storage });
  await client.flush();
  client.disconnect();
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(client.submit('liked'));
  ids.push(client.submit('trip_renamed', { title: 'offline title' }));
  await client.persist();
  process.stdout.write(`${JSON.stringify({ ids, seq: client.seq })}\n`);
  setInterval(() => {}, 1000);  // wait for the SIGKILL
}

const [url, app, room, file, count] = process.argv.slice(2);
if (url && app && room && file) void main(url, app, room, file, Number(count ?? 3));
