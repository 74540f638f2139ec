// SPDX-License-Identifier: Apache-2.0
// Interop with the real, unmodified `replicache` npm client (15.3.0) in Node:
// two clients (two client groups, kvStore 'mem') against a real `vellum serve`
// mutate concurrently, go offline while the server is down and keep mutating,
// come back, and converge to the server's room state; pokes drive their pulls.
// Raw pushes then show that a replayed push appends nothing and a gap is refused.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { Replicache } from 'replicache';
import WebSocket from 'ws';
import { removeDataDir, startServer, type RunningServer } from '../support/server.js';
import { app, eventually, mutators, putSchema, rawPush, roomSeq, serverView } from './common.js';

const room = 'interop';
let server: RunningServer;

before(async () => {
  server = await startServer();
  await putSchema(server.url);
});

after(async () => {
  await server.stop();
  removeDataDir(server);
});

interface Client {
  rep: Replicache<typeof mutators>;
  poke: WebSocket | null;
}

function makeClient(name: string): Client {
  const rep = new Replicache({
    name,
    kvStore: 'mem',
    pushURL: `${server.url}/replicache/${app}/${room}/push`,
    pullURL: `${server.url}/replicache/${app}/${room}/pull`,
    pullInterval: 1_000,
    pushDelay: 0,
    requestOptions: { minDelayMs: 20, maxDelayMs: 300 },
    mutators,
  });
  const client: Client = { rep, poke: null };
  connectPoke(client);
  return client;
}

/** The poke WebSocket: a content-free hint to pull; reconnects while the client lives. */
function connectPoke(client: Client): void {
  if (client.rep.closed) return;
  const ws = new WebSocket(`${server.wsUrl}/replicache/${app}/${room}/poke`);
  client.poke = ws;
  ws.on('message', () => void client.rep.pull());
  ws.on('error', () => {});
  ws.on('close', () => {
    if (client.poke === ws) setTimeout(() => connectPoke(client), 200);
  });
}

async function closeClient(client: Client): Promise<void> {
  const ws = client.poke;
  client.poke = null;
  ws?.close();
  await client.rep.close();
}

async function view(rep: Replicache<typeof mutators>): Promise<Record<string, unknown>> {
  const entries = await rep.query((tx) => tx.scan().entries().toArray());
  return Object.fromEntries(entries);
}

async function converged(clients: Client[]): Promise<boolean> {
  const expected = await serverView(server.url, room);
  for (const { rep } of clients) {
    if ((await rep.experimentalPendingMutations()).length !== 0) return false;
    try {
      assert.deepEqual(await view(rep), expected);
    } catch {
      return false;
    }
  }
  return true;
}

test('two clients mutate concurrently, go offline, come back and converge; pushes are idempotent and gaps refused', async () => {
  const a = makeClient('interop-a');
  const b = makeClient('interop-b');
  try {
    // Concurrently, optimistic at once.
    await Promise.all([
      a.rep.mutate.rename({ title: 'Tokyo' }),
      a.rep.mutate.vote({ item: 'sushi', n: 2 }),
      b.rep.mutate.vote({ item: 'sushi', n: 5 }),
      b.rep.mutate.tag({ tag: 'food' }),
    ]);
    assert.equal(await a.rep.query((tx) => tx.get('/votes/sushi')), 2, 'optimistic');
    await eventually('convergence', () => converged([a, b]));
    assert.deepEqual(await view(a.rep), { '/title': 'Tokyo', '/votes/sushi': 7, '/tags': ['food'] });

    // Offline: the server stops; both keep mutating against their local state.
    const dataDir = server.dataDir;
    const listen = `127.0.0.1:${server.port}`;
    await server.stop();
    await Promise.all([
      a.rep.mutate.vote({ item: 'ramen', n: 1 }),
      a.rep.mutate.tag({ tag: 'zen' }),
      b.rep.mutate.vote({ item: 'ramen', n: 3 }),
      b.rep.mutate.rename({ title: 'Kyoto' }),
      b.rep.mutate.tag({ tag: 'art' }),
    ]);
    assert.equal(await a.rep.query((tx) => tx.get('/votes/ramen')), 1, "a sees only its own");
    assert.equal((await b.rep.experimentalPendingMutations()).length, 3, 'b holds its mutations');
    await new Promise((resolve) => setTimeout(resolve, 300)); // failed pushes, retried

    // Back: the same data on the same port; the clients' retries get through.
    server = await startServer({ dataDir, listen });
    await eventually('convergence after the outage', () => converged([a, b]), 30_000);
    const final = await view(b.rep);
    assert.equal(final['/votes/ramen'], 4);
    assert.equal(final['/title'], 'Kyoto');
    assert.deepEqual(final['/tags'], ['art', 'food', 'zen']);

    // A replayed push (a's first mutation, sent again) appends nothing.
    const group = await a.rep.clientGroupID;
    const seq = await roomSeq(server.url, room);
    const replay = await rawPush(server.url, room, group,
      [{ id: 1, clientID: a.rep.clientID, name: 'rename', args: { title: 'Tokyo' } }]);
    assert.equal(replay.status, 200);
    assert.equal(await roomSeq(server.url, room), seq, 'the replay appended nothing');
    // A gap (a has sent 4 mutations; 6 skips 5) is refused and applies nothing.
    const gap = await rawPush(server.url, room, group,
      [{ id: 6, clientID: a.rep.clientID, name: 'vote', args: { item: 'gap', n: 1 } }]);
    assert.equal(gap.status, 409);
    assert.equal(((await gap.json()) as { error: string }).error, 'mutation_gap');
    assert.equal(await roomSeq(server.url, room), seq, 'the gap appended nothing');
    assert.equal((await serverView(server.url, room))['/votes/gap'], undefined);
    // And the real client is still in step afterwards.
    await a.rep.mutate.vote({ item: 'sushi', n: 1 });
    await eventually('convergence after the raw pushes', () => converged([a, b]));
    assert.equal(await b.rep.query((tx) => tx.get('/votes/sushi')), 8);
  } finally {
    await closeClient(a);
    await closeClient(b);
  }
});
