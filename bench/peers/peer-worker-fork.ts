/**
 * A worker of the hand-written child_process RPC in the peers suite (bench/peers/client-fork.ts
 * is its caller): answers `{ id, v }` with `{ id, r: v.n squared }`, counts `{ c: v }` tells and
 * answers `{ id, total: true }` with the count, over the fork IPC channel.
 */
import { onStopRequest, square, type SquareValue } from './square.js';

interface Request {
  id?: number;
  v?: SquareValue;
  c?: SquareValue;
  total?: boolean;
}

let counted = 0;
process.on('message', (m: Request) => {
  if (m.c !== undefined) counted++;
  else if (m.v !== undefined) process.send!({ id: m.id, r: square(m.v) });
  else if (m.total === true) process.send!({ id: m.id, r: counted });
});
onStopRequest(async () => {});
process.send!({ ready: true });
