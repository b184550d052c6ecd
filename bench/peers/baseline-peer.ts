/**
 * The far side of the baseline benchmarks (bench/suites/baselines.ts): a second Node process
 * (or a worker thread) that receives values and either counts them (`sink`, for throughput) or
 * sends each one straight back (`echo`, for round trips).
 *
 *   node baseline-peer.js ipc sink|echo                      (forked; child_process IPC)
 *   node baseline-peer.js unix <path> msgpackr|raw sink|echo (forked; connects to <path>)
 *   new Worker(baseline-peer.js, { workerData: { mode } })   (worker_threads MessagePort)
 *
 * Object transports carry control messages `{ ctl: 'ack' | 'end' | 'done', n }` beside the
 * values: the receiver acknowledges every ACK_EVERY values so the sender keeps a bounded window
 * in flight (Node's IPC and MessagePort queue without limit otherwise). Frame transports carry
 * `[u32 length][bytes]`; a zero-length frame ends a throughput run and is answered with one.
 */
import { connect, type Socket } from 'node:net';
import { isMainThread, parentPort, workerData } from 'node:worker_threads';
import { Unpackr } from 'msgpackr';
import { benchPackr } from '../values.js';

export const ACK_EVERY = 1000;

export interface ControlMessage {
  ctl: 'ack' | 'end' | 'done';
  n: number;
}

type Mode = 'sink' | 'echo';

/** Serves one object channel (IPC or MessagePort). */
function serveObjects(send: (m: unknown) => void, onMessage: (cb: (m: unknown) => void) => void, mode: Mode): void {
  let count = 0;
  onMessage((msg) => {
    const ctl = (msg as Partial<ControlMessage>).ctl;
    if (ctl === undefined) {
      if (mode === 'echo') {
        send(msg);
        return;
      }
      count++;
      if (count % ACK_EVERY === 0) send({ ctl: 'ack', n: count });
    } else if (ctl === 'end') {
      send({ ctl: 'done', n: count });
    }
  });
}

/**
 * Splits a byte stream into `[u32 length][bytes]` frames; calls `onFrame(buf, start, end)` for
 * each complete frame (a zero-length frame has start === end).
 */
export class FrameReader {
  private pending: Buffer | undefined;
  constructor(private readonly onFrame: (buf: Buffer, start: number, end: number) => void) {}

  push(chunk: Buffer): void {
    const buf = this.pending ? Buffer.concat([this.pending, chunk]) : chunk;
    this.pending = undefined;
    let off = 0;
    while (buf.length - off >= 4) {
      const len = buf.readUInt32LE(off);
      if (buf.length - off - 4 < len) break;
      this.onFrame(buf, off + 4, off + 4 + len);
      off += 4 + len;
    }
    if (off < buf.length) this.pending = buf.subarray(off);
  }
}

/** Serves one Unix socket connection. */
function serveFrames(socket: Socket, codec: 'msgpackr' | 'raw', mode: Mode): void {
  const unpackr = new Unpackr({ useRecords: false });
  const packr = benchPackr();
  const out: Buffer[] = [];
  const reader = new FrameReader((buf, start, end) => {
    if (start === end) {
      out.push(Buffer.alloc(4)); // done
      return;
    }
    let reply: Buffer | undefined;
    if (codec === 'msgpackr') {
      const value = unpackr.unpack(buf.subarray(start, end));
      if (mode === 'echo') reply = Buffer.from(packr.pack(value));
    } else {
      // Delivered as a Buffer per message (a view, no copy), as a receiver's handler would get it.
      const payload = buf.subarray(start, end);
      if (mode === 'echo') reply = payload;
    }
    if (reply) {
      const header = Buffer.allocUnsafe(4);
      header.writeUInt32LE(reply.length, 0);
      out.push(header, reply);
    }
  });
  socket.setNoDelay(true);
  socket.on('data', (chunk: Buffer) => {
    reader.push(chunk);
    if (out.length > 0) socket.write(out.length === 1 ? out[0]! : Buffer.concat(out.splice(0)));
    out.length = 0;
  });
}

if (!isMainThread && parentPort) {
  const port = parentPort;
  serveObjects(
    (m) => port.postMessage(m),
    (cb) => port.on('message', cb),
    (workerData as { mode: Mode }).mode,
  );
} else if (process.argv[2] === 'ipc') {
  serveObjects(
    (m) => process.send!(m),
    (cb) => process.on('message', cb),
    process.argv[3] as Mode,
  );
  process.on('disconnect', () => process.exit(0));
} else if (process.argv[2] === 'unix') {
  const socket = connect(process.argv[3]!);
  serveFrames(socket, process.argv[4] as 'msgpackr' | 'raw', process.argv[5] as Mode);
  socket.on('close', () => process.exit(0));
  socket.on('error', () => process.exit(1));
}
