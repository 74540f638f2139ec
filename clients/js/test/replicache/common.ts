// SPDX-License-Identifier: Apache-2.0
// Shared by the Replicache interop tests (node.test.ts, browser.test.ts): the
// room schema, Replicache mutators that write the same keys with the same
// values as the schema's actions (docs/api/replicache.md, "Mapping"), and raw
// protocol calls to read the server's view and to replay or gap pushes.
import type { WriteTransaction } from 'replicache';

export const app = 'rcinterop';

/** Keys are the JSON Pointers of the room's slots; values the slots' values. */
export const schema = {
  policies: { '/title': 'lww', '/votes/*': 'counter', '/tags': 'set' },
  actions: {
    rename: [{ op: 'set', path: '/title', value: '$payload.title' }],
    vote: [{ op: 'increment', path: '/votes/{payload.item}', value: '$payload.n' }],
    tag: [{ op: 'add', path: '/tags', value: '$payload.tag' }],
  },
};

/** Set elements of strings sort by bytes on the server: code units agree for ASCII tags. */
function byBytes(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

// The mutators take plain JSON args (Replicache's ReadonlyJSONValue).
export const mutators = {
  async rename(tx: WriteTransaction, args: { title: string }) {
    await tx.set('/title', args.title);
  },
  async vote(tx: WriteTransaction, args: { item: string; n: number }) {
    const key = `/votes/${args.item}`;
    const current = ((await tx.get(key)) as number | undefined) ?? 0;
    await tx.set(key, current + args.n);
  },
  async tag(tx: WriteTransaction, args: { tag: string }) {
    const tags = [...(((await tx.get('/tags')) as string[] | undefined) ?? [])];
    if (!tags.includes(args.tag)) tags.push(args.tag);
    tags.sort(byBytes);
    await tx.set('/tags', tags);
  },
};

export async function putSchema(url: string): Promise<void> {
  const response = await fetch(`${url}/apps/${app}/schema`, { method: 'PUT', body: JSON.stringify(schema) });
  if (response.status !== 200) throw new Error(`schema: ${response.status} ${await response.text()}`);
}

export interface PullResponse {
  cookie: number;
  lastMutationIDChanges: Record<string, number>;
  patch: Array<{ op: string; key?: string; value?: unknown }>;
}

export async function rawPull(url: string, room: string, clientGroupID: string, cookie: number | null): Promise<PullResponse> {
  const response = await fetch(`${url}/replicache/${app}/${room}/pull`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ pullVersion: 1, schemaVersion: '', profileID: 'test', clientGroupID, cookie }),
  });
  if (response.status !== 200) throw new Error(`pull: ${response.status} ${await response.text()}`);
  return (await response.json()) as PullResponse;
}

/** The server's keys and values: a first pull by a group of its own. */
export async function serverView(url: string, room: string): Promise<Record<string, unknown>> {
  const pulled = await rawPull(url, room, 'observer', null);
  const view: Record<string, unknown> = {};
  for (const op of pulled.patch) if (op.op === 'put') view[op.key!] = op.value;
  return view;
}

export async function roomSeq(url: string, room: string): Promise<number> {
  const response = await fetch(`${url}/rooms/${app}/${room}/state`);
  return ((await response.json()) as { seq: number }).seq;
}

export async function rawPush(url: string, room: string, clientGroupID: string,
  mutations: Array<{ id: number; clientID: string; name: string; args: unknown }>): Promise<Response> {
  return fetch(`${url}/replicache/${app}/${room}/push`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({
      pushVersion: 1, schemaVersion: '', profileID: 'test', clientGroupID,
      mutations: mutations.map((m) => ({ ...m, timestamp: 1 })),
    }),
  });
}

/** Polls `check` until it returns true or `timeoutMs` passes. */
export async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 20_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await check()) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}
