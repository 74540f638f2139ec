// SPDX-License-Identifier: Apache-2.0
// Stamps: the total order on events that every merge rule uses (docs/api/rooms.md, "Room
// events"): lamport, then server time, then participant, then event id, strings by UTF-8 bytes.
// Server times are nanoseconds (beyond 2^53), so they are BigInts here.
import type { Json } from '../types.js';
import { isInteger, isSafeUnsigned } from './json.js';
import { compareUtf8, invalid, isWellFormed } from './text.js';

export interface Stamp {
  readonly lamport: number;
  readonly serverTime: bigint;
  readonly participant: string;
  readonly id: string;
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
// The C++ reads at most 30 characters: far inside 128 bits, more than any counter sum needs.
const DECIMAL_LENGTH_MAX = 30;
const DECIMAL = /^-?[0-9]+$/;

function sign(difference: number | bigint): number {
  return difference > 0 ? 1 : difference < 0 ? -1 : 0;
}

/** Sets compare an add with a remove on (lamport, serverTime, participant): no event id. */
export function compareWithoutId(a: Stamp, b: Stamp): number {
  return sign(a.lamport - b.lamport) || sign(a.serverTime - b.serverTime) ||
    compareUtf8(a.participant, b.participant);
}

/** The total order of stamps: -1, 0 (the same event) or 1. */
export function compareStamps(a: Stamp, b: Stamp): number {
  return compareWithoutId(a, b) || compareUtf8(a.id, b.id);
}

/** A decimal integer string of at most 30 characters (a counter sum), as a BigInt. */
export function parseDecimal(text: Json | undefined, where: string): bigint {
  if (typeof text !== 'string' || text.length > DECIMAL_LENGTH_MAX || !DECIMAL.test(text)) {
    throw invalid(`${where}: not a decimal integer string`);
  }
  return BigInt(text);
}

/** A server time: a decimal string, a BigInt or an integer, within the 64-bit range. */
export function parseServerTime(value: unknown, where: string): bigint {
  let time: bigint;
  if (typeof value === 'bigint') {
    time = value;
  } else if (isInteger(value)) {
    time = BigInt(value);
  } else if (typeof value === 'string') {
    time = parseDecimal(value, where);
  } else {
    throw invalid(`${where}: must be a decimal integer string`);
  }
  if (time < INT64_MIN || time > INT64_MAX) throw invalid(`${where}: beyond the 64-bit range`);
  return time;
}

/** A stamp in snapshots: [lamport, "serverTime", participant, eventId]. */
export function stampToJson(stamp: Stamp): Json {
  return [stamp.lamport, stamp.serverTime.toString(), stamp.participant, stamp.id];
}

function isStampText(value: Json | undefined): value is string {
  return typeof value === 'string' && value.length > 0 && isWellFormed(value);
}

export function stampFromJson(json: Json | undefined, where: string): Stamp {
  const message = `${where}: a stamp is [lamport, "serverTime", participant, eventId]`;
  if (!Array.isArray(json) || json.length !== 4 || !isSafeUnsigned(json[0]) ||
      !isStampText(json[2]) || !isStampText(json[3])) {
    throw invalid(message);
  }
  return { lamport: json[0], serverTime: parseServerTime(json[1], message), participant: json[2],
    id: json[3] };
}

/** A stamp or null (a set element's add or remove that never happened). */
export function optionalStampFromJson(json: Json | undefined, where: string): Stamp | undefined {
  return json === null ? undefined : stampFromJson(json, where);
}
