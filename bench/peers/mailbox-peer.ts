/**
 * One process of the mailbox benchmark (bench/suites/mailbox.ts): joins the bench group as a
 * real mpbus process and obeys commands from the suite over the fork IPC channel. The timed
 * work (sending, echoing, counting) runs entirely here, between mpbus processes; the IPC
 * channel only starts runs and carries results.
 *
 * Commands: start, open (count | countBursts | echo mailboxes), reset + awaitEnd (receiver), throughput, rtt, idle, exit.
 */
import { Runtime, MailboxSystem, type MailboxRef } from '../../src/index.js';
import { Samples } from '../lib.js';
import { benchValue, rawPayload } from '../values.js';

interface Command {
  id: number;
  op: 'start' | 'open' | 'throughput' | 'rtt' | 'idle' | 'reset' | 'awaitEnd' | 'exit';
  [k: string]: unknown;
}

/** The value that ends a throughput run; it follows the last value through the same inbox. */
const END_SEQ = -1;
const EMPTY = Buffer.alloc(0);

let mbs: MailboxSystem;
let counted = 0;
let endWaiter: ((r: { count: number; endNs: string; cpuUs: number }) => void) | undefined;
let cpuAtReset = process.cpuUsage();
let endOfRun: Promise<unknown> = Promise.resolve(undefined);

function cpuSinceReset(): number {
  const d = process.cpuUsage(cpuAtReset);
  return d.user + d.system;
}

function onEnd(): void {
  const endNs = process.hrtime.bigint().toString();
  endWaiter?.({ count: counted, endNs, cpuUs: cpuSinceReset() });
  endWaiter = undefined;
}

/** Opens mailboxes that count what they receive (an END value or an empty Buffer ends a run). */
function openCounting(names: string[], capacity: number): void {
  const onValue = (v: unknown): void => {
    if (Buffer.isBuffer(v) ? v.length === 0 : (v as { seq: number }).seq === END_SEQ) onEnd();
    else counted++;
  };
  for (const name of names) mbs.open(name, { capacity }).messages$.subscribe(onValue);
}

/**
 * Opens mailboxes that count raw messages through bursts$ (one emission per drain, the
 * payloads read in place); an empty payload ends a run. The per-message work matches the raw
 * Unix socket baseline's receiver, which adds up each payload's length.
 */
function openCountingBursts(names: string[], capacity: number): void {
  let receivedBytes = 0;
  for (const name of names) {
    mbs.open(name, { capacity }).bursts$.subscribe((burst) => {
      const lengths = burst.lengths;
      for (let i = 0; i < burst.count; i++) {
        const length = lengths[i]!;
        if (length === 0) onEnd();
        else {
          receivedBytes += length;
          counted++;
        }
      }
    });
  }
  if (receivedBytes < 0) console.log(receivedBytes); // keeps the sum observable
}

/** Opens a mailbox that sends each message straight back to `replyTo`. */
function openEcho(name: string, replyTo: string): void {
  let back: MailboxRef | undefined;
  mbs.open(name, { capacity: 1024 }).messages$.subscribe((v) => {
    back ??= mbs.ref(replyTo);
    if (Buffer.isBuffer(v)) back.trySendRaw(v);
    else back.trySend(v);
  });
}

/**
 * Sends values to `to` for `seconds` as fast as the mailboxes take them (`batch` > 1: with
 * trySendMany, `batch` values per native call), then the END value.
 */
function throughput(to: string[], bytes: number, raw: boolean, seconds: number, batch: number): Promise<{ sent: number; startNs: string; full: number }> {
  const refs = to.map((name) => mbs.ref(name));
  const value = benchValue(bytes);
  const payload = rawPayload(bytes);
  // A batch of distinct values of the same encoded size (seq 256..): each is packed when sent.
  const values = Array.from({ length: Math.max(1, batch) }, (_, i) => ({ ...value, seq: 256 + i }));
  const payloads = values.map(() => payload);
  let sent = 0;
  let full = 0;
  let next = 0;
  const startNs = process.hrtime.bigint();
  const deadline = performance.now() + seconds * 1000;
  return new Promise((resolve, reject) => {
    const burst = (): void => {
      try {
        for (let i = 0; i < 4096;) {
          const ref = refs[next]!;
          let n: number;
          if (batch > 1) {
            n = raw ? ref.trySendManyRaw(payloads) : ref.trySendMany(values);
          } else {
            value.seq = 256 + (sent & 0x7fff); // the encoded size stays the same
            n = (raw ? ref.trySendRaw(payload) : ref.trySend(value)) === 'sent' ? 1 : 0;
          }
          sent += n;
          i += n;
          if (n === 0) {
            // Full: sleep until the receiver drains instead of retrying in a loop, which would
            // take the CPU from the receiver when the CPUs are oversubscribed (4 pairs).
            full++;
            ref.waitForRoom().then(burst, reject);
            return;
          }
          if (++next === refs.length) next = 0;
        }
        if (performance.now() < deadline) {
          setImmediate(burst);
          return;
        }
        const last = refs[refs.length - 1]!;
        const end = raw ? last.sendRaw(EMPTY, { timeoutMs: 30_000 }) : last.send({ seq: END_SEQ, body: '' }, { timeoutMs: 30_000 });
        end.then(() => resolve({ sent, startNs: startNs.toString(), full }), reject);
      } catch (err) {
        reject(err);
      }
    };
    burst();
  });
}

/** Round trips to an echo mailbox `to`, answered on our mailbox `me`: p50/p99 in µs. */
function rtt(me: string, to: string, bytes: number, raw: boolean, rounds: number, seconds: number): Promise<{ p50: number; p99: number; n: number }> {
  const ref = mbs.ref(to);
  const value = benchValue(bytes);
  const payload = rawPayload(bytes);
  const warmup = Math.ceil(rounds / 10);
  const samples = new Samples();
  const deadline = performance.now() + seconds * 1000;
  return new Promise((resolve, reject) => {
    let i = 0;
    let t0 = 0n;
    const ping = (): void => {
      t0 = process.hrtime.bigint();
      const r = raw ? ref.trySendRaw(payload) : ref.trySend(value);
      if (r !== 'sent') reject(new Error(`round trip send: ${r}`));
    };
    const box = mbs.open(me, { capacity: 16 });
    const sub = box.messages$.subscribe(() => {
      const us = Number(process.hrtime.bigint() - t0) / 1000;
      if (i >= warmup) samples.add(us);
      i++;
      if (i < warmup + rounds && !(i > warmup + 100 && performance.now() > deadline)) {
        ping();
        return;
      }
      sub.unsubscribe();
      box.close();
      resolve({ p50: samples.percentile(50), p99: samples.percentile(99), n: samples.length });
    });
    ping();
  });
}

async function run(cmd: Command): Promise<unknown> {
  switch (cmd.op) {
    case 'start': {
      const rt = await Runtime.start({ filePrefix: cmd.prefix as string, procType: cmd.procType as 'primary' | 'secondary', handleSignals: true });
      mbs = await MailboxSystem.openAsync({ poolBuffers: 16384 });
      return { slot: mbs.slot, lcore: rt.lcoreId };
    }
    case 'open':
      if (cmd.mode === 'echo') openEcho(cmd.name as string, cmd.replyTo as string);
      else if (cmd.mode === 'countBursts') openCountingBursts(cmd.names as string[], (cmd.capacity as number | undefined) ?? 4096);
      else openCounting(cmd.names as string[], (cmd.capacity as number | undefined) ?? 4096);
      return true;
    case 'throughput':
      return throughput(cmd.to as string[], cmd.bytes as number, cmd.raw as boolean, cmd.seconds as number, (cmd.batch as number | undefined) ?? 1);
    case 'rtt':
      return rtt(cmd.me as string, cmd.to as string, cmd.bytes as number, cmd.raw as boolean, cmd.rounds as number, cmd.seconds as number);
    case 'reset':
      // Resets the counters and CPU clock before a run; 'awaitEnd' then answers at its END value.
      counted = 0;
      cpuAtReset = process.cpuUsage();
      endOfRun = new Promise((resolve) => (endWaiter = resolve));
      return true;
    case 'awaitEnd':
      return endOfRun;
    case 'idle': {
      // CPU this process uses while its mailboxes are open and nothing arrives.
      await new Promise((r) => setTimeout(r, 200)); // let the receiver park
      const before = process.cpuUsage();
      const t0 = performance.now();
      await new Promise((r) => setTimeout(r, cmd.ms as number));
      const used = process.cpuUsage(before);
      return { percent: ((used.user + used.system) / 1000 / (performance.now() - t0)) * 100, parked: mbs.isParked };
    }
    case 'exit':
      setImmediate(() => {
        void Runtime.current()
          ?.close()
          .finally(() => process.exit(0));
      });
      return true;
    default:
      throw new Error(`unknown op ${String(cmd.op)}`);
  }
}

process.on('message', (cmd: Command) => {
  run(cmd).then(
    (value) => process.send?.({ id: cmd.id, ok: true, value }),
    (err: unknown) => process.send?.({ id: cmd.id, ok: false, error: String((err as Error)?.stack ?? err) }),
  );
});
process.on('disconnect', () => {
  void (Runtime.current()?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
process.send?.({ ready: true });
