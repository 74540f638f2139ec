// SPDX-License-Identifier: Apache-2.0
// Who this browser is: a display name (from ?name= or the name dialog) and a
// participant id derived from it plus a random suffix. Both are kept in
// localStorage — one id per name, so that a reload (offline too) is the same
// participant and finds its outbox again, and two tabs with two names are two
// participants.

const IDS_KEY = 'vellum-demo:participants';
const LAST_NAME_KEY = 'vellum-demo:name';

export interface Identity {
  name: string;
  participant: string;
}

export function slug(name: string): string {
  const base = name
    .normalize('NFKD')
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 32);
  return base || 'guest';
}

function randomSuffix(): string {
  const bytes = new Uint8Array(4);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

function storedIds(): Record<string, string> {
  try {
    const parsed: unknown = JSON.parse(localStorage.getItem(IDS_KEY) ?? '{}');
    if (parsed !== null && typeof parsed === 'object' && !Array.isArray(parsed)) {
      return Object.fromEntries(
        Object.entries(parsed as Record<string, unknown>).filter(
          (e): e is [string, string] => typeof e[1] === 'string',
        ),
      );
    }
  } catch {
    // A corrupt entry is replaced below.
  }
  return {};
}

/** The name used last in this browser, if any. */
export function lastName(): string | undefined {
  return localStorage.getItem(LAST_NAME_KEY) ?? undefined;
}

/** The identity for `name`: the id this browser made for it before, else a new one. */
export function identityFor(name: string): Identity {
  const clean = name.trim().slice(0, 60);
  const ids = storedIds();
  let participant = ids[clean];
  if (!participant) {
    participant = `${slug(clean)}-${randomSuffix()}`;
    ids[clean] = participant;
    localStorage.setItem(IDS_KEY, JSON.stringify(ids));
  }
  localStorage.setItem(LAST_NAME_KEY, clean);
  return { name: clean, participant };
}
