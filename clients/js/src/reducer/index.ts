// SPDX-License-Identifier: Apache-2.0
// The room reducer of the TypeScript client: a byte-identical port of the C++ one
// (src/rooms/, specified in docs/api/rooms.md, pinned by spec/rooms/vectors/). Every replica
// that applies the same committed events computes the same document and state hash.
export { Schema } from './schema.js';
export { RoomState, type ReducerEvent } from './room_state.js';
export { canonicalJson, sha256Hex } from './json.js';
