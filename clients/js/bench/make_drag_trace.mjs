// SPDX-License-Identifier: Apache-2.0
// Generates bench/drag_trace.json deterministically: 2 s of pointermove events
// at 120 Hz dragging the demo's budget slider (360 px wide, €0–€10,000 in €1
// steps), and the slider `input` events they cause (a move that does not
// change the value fires none) — what the demo submits as `budget_set` with
// coalesceKey "budget". The path: an eased drag right, a hesitant hover with a
// little hand tremor, then a correction back left.
//   node bench/make_drag_trace.mjs > bench/drag_trace.json
const HZ = 120;
const DURATION_MS = 2000;
const WIDTH = 360;
const MIN = 0;
const MAX = 1_000_000; // cents
const STEP = 100;

let seed = 0x5eed1234;
function random() {
  // xorshift32: a fixed sequence, so the trace is the same on every machine.
  seed ^= seed << 13;
  seed >>>= 0;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  seed >>>= 0;
  return seed / 2 ** 32;
}

const ease = (u) => (u < 0.5 ? 4 * u * u * u : 1 - (-2 * u + 2) ** 3 / 2);

function pointerX(t) {
  if (t <= 1200) return 60 + (250 - 60) * ease(t / 1200);
  if (t <= 1600) return 250 + 2.5 * Math.sin((t - 1200) / 45);
  return 250 - 40 * ease((t - 1600) / 400);
}

const moves = [];
const inputs = [];
let last;
for (let i = 0; i <= (DURATION_MS * HZ) / 1000; i++) {
  const t = Math.round((i * 1000 * 1000) / HZ) / 1000;
  const x = Math.round((pointerX(t) + (random() - 0.5) * 0.6) * 100) / 100;
  moves.push({ t, x });
  const cents = Math.min(
    MAX,
    Math.max(MIN, Math.round(((x / WIDTH) * (MAX - MIN)) / STEP) * STEP + MIN),
  );
  if (cents !== last) inputs.push({ t, cents });
  last = cents;
}

const trace = {
  description:
    'A 2 s drag of the trip planner budget slider: pointermove at 120 Hz (moves) and the' +
    ' input events they fire (inputs), each one a budget_set with coalesceKey "budget".',
  generator: 'node bench/make_drag_trace.mjs',
  hz: HZ,
  durationMs: DURATION_MS,
  slider: { widthPx: WIDTH, min: MIN, max: MAX, step: STEP, unit: 'cents' },
  moves,
  inputs,
};
process.stdout.write(JSON.stringify(trace) + '\n');
