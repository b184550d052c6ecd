/**
 * The tell path of the peers suite's `_tell` rows, in one process (docs/benchmarks.md, "Seventh
 * pass: the tell path"): a caller system tells `count` with the peers' 64-byte value
 * (`{ n, pad }`, bench/peers/square.ts) to an actor of a second actor system of the same process,
 * in batches of 1,024 per turn of the event loop, each followed by an ask of the actor's `total`
 * (answered after every tell before it: one ask per 1,024 tells, in every build alike). Every
 * tell crosses the process's inbox ring encoded, as it would to another process:
 * ref.tell, the envelope, the value rule's walk, the encode and the batched send at the end of the
 * turn; then the drain, the decode, the transport's envelope, the actor's cell and the handler.
 *
 * `caller` mode tells a plain mailbox consumed in bursts instead (no decode, no actor; each
 * batch waits until the mailbox has it): what the caller's side costs, with only the drain of
 * the receiving side. The worker's side is the difference of the two modes.
 *
 * Under callgrind the instruction count of two runs differs by their tells alone (start-up
 * cancels), counting only what runs in immediates (the tells, the pump and the actor: timers
 * such as the registry poll run by wall time, which valgrind stretches 50-fold). What V8's
 * optimizing compiler does in between does not cancel: a late recompilation moves a run by up
 * to ~150 M instructions, so compare the counts without it too (callgrind_annotate, the
 * functions of `v8::internal::compiler::`, its parser and its assemblers left out):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.50k '--toggle-collect=*CheckImmediate*' \
 *     node --single-threaded --predictable dist/bench/profile-tell-path.js 50000 full   # and 150000; `caller`
 *   # instructions per tell = (I refs of the second - I refs of the first) / 100000
 *
 * Run (after tsc): node dist/bench/profile-tell-path.js [tells=200000] [full|caller]
 * Prints tells/s and the CPU time per tell.
 */
import 'reflect-metadata';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { GroupFiles } from '../src/runtime/group.js';
import { MailboxSystem, startActorSystem } from '../src/index.js';
import { squareValue, type SquareValue } from './peers/square.js';

interface CountContract {
  count: { msg: SquareValue; reply: void };
  total: { msg: void; reply: number };
}

const tells = Number(process.argv[2] ?? 200_000);
const mode = process.argv[3] === 'caller' ? 'caller' : 'full';
const BATCH = 1024;
const VALUES: SquareValue[] = Array.from({ length: 64 }, (_, i) => squareValue(1000 + i));
const prefix = `tell_path_${process.pid}`;
// No spin in the drain: what the pump does between messages stays the same under callgrind.
const options = { filePrefix: prefix, procType: 'primary', mailboxes: { spinUs: 0 }, askTimeoutMs: 600_000 } as const;
const caller = await startActorSystem(options);
const worker = await startActorSystem(options);
let failed = false;
try {
  let counted = 0;
  /** Caller mode: resolves once the sink has counted `awaited` tells. */
  let awaited = 0;
  let reached: () => void = () => undefined;
  if (mode === 'full') {
    await worker.spawn<CountContract>('w', {
      count: () => {
        counted++;
      },
      total: () => counted,
    });
  } else {
    const sink = MailboxSystem.open().open('w', { capacity: 1 << 16 });
    sink.bursts$.subscribe((burst) => {
      counted += burst.count;
      if (counted >= awaited) reached();
    });
  }
  const ref = caller.ref<CountContract>('w');
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  // Each batch is confirmed before the next (an ask behind the tells, or the sink's count), so
  // no queue grows and every run takes the same path: the batch's send at the end of its turn.
  for (let sent = 0; sent < tells;) {
    for (const end = Math.min(tells, sent + BATCH); sent < end; sent++) ref.tell('count', VALUES[sent & 63]!);
    if (mode === 'full') {
      const total = await ref.ask('total');
      if (total !== sent) throw new Error(`the actor counted ${total} of ${sent}`);
    } else {
      awaited = sent;
      if (counted < awaited) await new Promise<void>((resolve) => (reached = resolve));
      await nextTurn();
    }
  }
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  console.log(JSON.stringify({ mode, tells, perSecond: Math.round(tells / seconds), cpuUsPerTell: +((cpu.user + cpu.system) / tells).toFixed(3) }));
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await worker.close({ timeoutMs: 2000 });
  await caller.close({ timeoutMs: 2000 });
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
if (failed) process.exitCode = 1;
