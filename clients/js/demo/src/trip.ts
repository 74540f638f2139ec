// SPDX-License-Identifier: Apache-2.0
// Reading the trip room's document (see schema.ts) defensively: the state is
// whatever the events made of it, and paths no event touched are absent.
import type { Json, JsonObject } from '../../src/types.js';

export interface Activity {
  id: string;
  name: string;
  addedBy: string;
}

export interface Trip {
  title: string | undefined;
  budget: number | undefined;
  dates: { from: string; to: string } | undefined;
  activities: Activity[];
  /** Activity id → voters (participant ids), in the set's order. */
  votes: Map<string, string[]>;
  packing: string[];
  packed: Set<string>;
}

function strings(value: Json | undefined): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

function object(value: Json | undefined): JsonObject | undefined {
  return value !== null && typeof value === 'object' && !Array.isArray(value) ? value : undefined;
}

const read = new WeakMap<JsonObject, Trip>();

/**
 * The trip in a room document, memoized per document object (documents are
 * frozen: the client hands out the same one until the room changes).
 */
export function readTrip(state: JsonObject): Trip {
  let trip = read.get(state);
  if (!trip) {
    trip = parseTrip(state);
    read.set(state, trip);
  }
  return trip;
}

function parseTrip(state: JsonObject): Trip {
  const activities: Activity[] = [];
  if (Array.isArray(state.activities)) {
    for (const item of state.activities) {
      const o = object(item);
      if (o && typeof o.id === 'string') {
        activities.push({
          id: o.id,
          name: typeof o.name === 'string' ? o.name : o.id,
          addedBy: typeof o.addedBy === 'string' ? o.addedBy : '',
        });
      }
    }
  }
  const votes = new Map<string, string[]>();
  const votesObject = object(state.votes);
  if (votesObject)
    for (const [id, voters] of Object.entries(votesObject)) votes.set(id, strings(voters));
  const dates = object(state.dates);
  return {
    title: typeof state.title === 'string' ? state.title : undefined,
    budget: typeof state.budget === 'number' ? state.budget : undefined,
    dates:
      dates && typeof dates.from === 'string' && typeof dates.to === 'string'
        ? { from: dates.from, to: dates.to }
        : undefined,
    activities,
    votes,
    packing: strings(state.packing),
    packed: new Set(strings(state.packed)),
  };
}
