// SPDX-License-Identifier: Apache-2.0
// The trip planner's room schema (app `trips`, seed 000) and the dev-mode
// bootstrap that installs it: GET /apps/trips/schema, PUT it when missing or
// different (the server accepts that from loopback when no app secret is set).
import type { JsonObject } from '../../src/types.js';
import tripSchema from './trip_schema.json';

export const APP = 'trips';

/**
 * The schema lives in trip_schema.json (the benchmarks read it too): title,
 * budget (integer cents) and dates are last-writer-wins registers; the
 * activities a list of {id, name, addedBy}; each activity's votes a set of
 * participants; the packing list and the packed items add-wins sets.
 */
export const TRIP_SCHEMA = tripSchema as JsonObject;

/** JSON with object keys sorted, to compare schemas whatever the server's key order. */
export function stableJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(stableJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).sort(([a], [b]) =>
      a < b ? -1 : a > b ? 1 : 0,
    );
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${stableJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

export type SchemaResult = 'current' | 'installed' | 'unreachable';

/**
 * Makes sure the server has this schema. Offline (or a server that refuses the
 * PUT) is not fatal: the room client starts from its cached room and the
 * outbox, and a join of a room whose app has no schema fails visibly.
 */
export async function ensureSchema(base: string, timeoutMs = 3000): Promise<SchemaResult> {
  const url = `${base}/apps/${APP}/schema`;
  const signal = AbortSignal.timeout(timeoutMs);
  try {
    const got = await fetch(url, { signal, cache: 'no-store' });
    if (got.ok) {
      const body = (await got.json()) as { schema?: unknown };
      if (stableJson(body.schema) === stableJson(TRIP_SCHEMA)) return 'current';
    } else if (got.status !== 404) {
      return 'unreachable';
    }
    const put = await fetch(url, {
      method: 'PUT',
      signal,
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(TRIP_SCHEMA),
    });
    if (!put.ok) throw new Error(`PUT ${url}: ${put.status} ${await put.text()}`);
    return 'installed';
  } catch (error) {
    if (error instanceof Error && error.message.startsWith('PUT ')) throw error;
    return 'unreachable';
  }
}
