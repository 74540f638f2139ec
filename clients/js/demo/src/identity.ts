// SPDX-License-Identifier: Apache-2.0
// Who this browser is: a display name (from ?name= or the name dialog) and a
// participant id derived from it plus a random suffix, both kept in
// localStorage so that a reload (offline too) is the same participant.

const STORAGE_KEY = 'vellum-demo:identity';

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

export function storedIdentity(): Identity | undefined {
  try {
    const raw = localStorage.getItem(STORAGE_KEY);
    if (!raw) return undefined;
    const parsed = JSON.parse(raw) as Partial<Identity>;
    if (typeof parsed.name === 'string' && typeof parsed.participant === 'string') {
      return { name: parsed.name, participant: parsed.participant };
    }
  } catch {
    // A corrupt entry is replaced below.
  }
  return undefined;
}

/** The identity for `name`: the stored one when the name is unchanged, else a new id. */
export function identityFor(name: string): Identity {
  const clean = name.trim().slice(0, 60);
  const stored = storedIdentity();
  if (stored && stored.name === clean) return stored;
  const identity = { name: clean, participant: `${slug(clean)}-${randomSuffix()}` };
  localStorage.setItem(STORAGE_KEY, JSON.stringify(identity));
  return identity;
}
