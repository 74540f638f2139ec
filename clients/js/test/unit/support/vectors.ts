// SPDX-License-Identifier: Apache-2.0
// The shared reducer test vectors (spec/rooms/vectors/*.json, format in spec/rooms/README.md).
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import type { Json, JsonObject } from '../../../src/types.js';

const here = path.dirname(fileURLToPath(import.meta.url));
/** clients/js: this file is compiled to clients/js/dist/test/unit/support/. */
const packageRoot = path.resolve(here, '..', '..', '..', '..');
export const vectorsDir = path.resolve(packageRoot, '..', '..', 'spec', 'rooms', 'vectors');

export interface VectorEvent {
  seq: number;
  id: string;
  action: string;
  payload?: Json;
  lamport: number;
  participant: string;
  serverTime: string;
}

export interface Vector {
  file: string;
  description: string;
  schema: Json;
  events: { event: VectorEvent; expect: JsonObject }[];
  expected: { document: JsonObject; canonicalDocument: string; stateHash: string;
    state: JsonObject };
}

export function loadVectors(): Vector[] {
  return readdirSync(vectorsDir).filter((name) => name.endsWith('.json')).sort().map((file) => ({
    file, ...(JSON.parse(readFileSync(path.join(vectorsDir, file), 'utf8')) as Omit<Vector,
      'file'>),
  }));
}

export function loadVector(file: string): Vector {
  const vector = loadVectors().find((candidate) => candidate.file === file);
  if (vector === undefined) throw new Error(`no vector ${file} in ${vectorsDir}`);
  return vector;
}
