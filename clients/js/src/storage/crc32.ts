// SPDX-License-Identifier: Apache-2.0
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320, the checksum of zlib
// and PNG): frames of the file outbox carry it so that a torn or garbage tail
// is recognized on load. A table-driven byte-at-a-time loop is plenty for
// records of a few KiB.

const table = buildTable();

function buildTable(): Uint32Array {
  const entries = new Uint32Array(256);
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++) crc = crc & 1 ? 0xedb88320 ^ (crc >>> 1) : crc >>> 1;
    entries[byte] = crc >>> 0;
  }
  return entries;
}

export function crc32(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const byte of bytes) crc = table[(crc ^ byte) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}
