/**
 * What a worker process does per received job, alone (docs/benchmarks.md, "Third pass"): one
 * process runs a flagship worker actor (`JobWorker`, samples/flagship/jobs.ts) over the mailbox
 * transport, and a stub caller in the same process that sends it asks (or tells) in
 * their wire form through its mailbox and takes the replies from a mailbox of its own, keeping
 * `window` asks in flight. Every message crosses the process's inbox ring encoded, as from another
 * process: drain, decode, the actor's cell, the handler, the reply's encode and send. The stub
 * encodes the asks and decodes the replies (through the same pump: a change to decoding shows on
 * both sides, as it would in a caller and its worker).
 *
 * Under callgrind, counting only the immediates the pump and the actor run in, the instructions
 * per job agreed within 0.1% over three runs made alone; beside another heavy process the counts
 * went wrong (the same for 10,000 and 30,000 jobs), so use it to see where instructions go, and
 * compare builds with the CPU time it prints (alternated runs):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=/dev/null '--toggle-collect=*CheckImmediate*' \
 *     node --single-threaded --predictable dist/bench/profile-worker-path.js 10000   # and 30000
 *   # instructions per job = (I refs of the second - I refs of the first) / 20000
 *
 * Run (after tsc): node dist/bench/profile-worker-path.js [jobs=200000] [window=128] [ask|tell]
 * Prints jobs/s, the pump's turns and drains per job, and with --trace-gc-nvp the scavenges show.
 */
import 'reflect-metadata';
import { GroupFiles } from '../src/runtime/group.js';
import { MailboxSystem, startActorSystem } from '../src/index.js';
import { JobWorker, type Job } from '../samples/flagship/jobs.js';

const jobs = Number(process.argv[2] ?? 200_000);
const window = Number(process.argv[3] ?? 128);
const mode = process.argv[4] === 'tell' ? 'tell' : 'ask';
const prefix = `mpbench_worker_path_${process.pid}`;
// No spin in the drain: what the pump does between messages stays the same under callgrind.
const system = await startActorSystem({ filePrefix: prefix, procType: 'primary', mailboxes: { spinUs: 0 } });
let failed = false;
try {
  await system.spawn(JobWorker, { name: 'w' });
  const mailboxes = MailboxSystem.open();
  const stub = mailboxes.open<unknown[]>('stub', { capacity: 1 << 16 });
  const worker = mailboxes.ref<unknown[]>('w');
  const payload = new Uint8Array(64).map((_, i) => i);
  const deadline = Date.now() + 600_000;
  // The wire form of the flagship's ask (docs/actors.md, "The ask path across processes").
  const wire = (id: number, kind: 0 | 1): unknown[] => [
    kind,
    'job',
    { id, key: 'k', payload } satisfies Job,
    kind === 1 ? id : null,
    kind === 1 ? 'stub' : null,
    null,
    kind === 1 ? deadline : null,
    null,
  ];
  let sent = 0;
  let answered = 0;
  let refill = 0;
  let refillQueued = false;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const stats0 = { ...mailboxes.loopStats };
  await new Promise<void>((resolve) => {
    const send = (count: number, kind: 0 | 1): void => {
      const n = Math.min(count, jobs - sent);
      if (n <= 0) return;
      const first = sent;
      const ok = worker.offerMany(n, (i) => wire(first + i, kind));
      if (ok !== n) throw new Error(`the worker's mailbox took ${ok} of ${n}`);
      sent += n;
    };
    const flushRefill = (): void => {
      refillQueued = false;
      const n = refill;
      refill = 0;
      send(n, 1);
    };
    stub.messages$.subscribe((reply) => {
      if (reply[0] !== 2) throw new Error(`a failed job: ${JSON.stringify(reply[2])}`);
      if (++answered === (mode === 'ask' ? jobs : 1)) {
        resolve();
        return;
      }
      refill++;
      if (!refillQueued) {
        refillQueued = true;
        queueMicrotask(flushRefill);
      }
    });
    if (mode === 'ask') send(window, 1);
    else {
      // Tells in batches of `window` per turn, then one ask: answered after every tell before it.
      const tellSome = (): void => {
        send(Math.min(window, jobs - 1 - sent), 0);
        if (sent < jobs - 1) setImmediate(tellSome);
        else send(1, 1);
      };
      tellSome();
    }
  });
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const s = mailboxes.loopStats;
  console.log(
    JSON.stringify({
      mode,
      jobs,
      window,
      perSecond: Math.round(jobs / seconds),
      cpuUsPerJob: +((cpu.user + cpu.system) / jobs).toFixed(2),
      turnsPerJob: +((s.turns - stats0.turns) / jobs).toFixed(3),
      drainsPerJob: +((s.drains - stats0.drains) / jobs).toFixed(3),
      parksPerJob: +((s.parks - stats0.parks) / jobs).toFixed(4),
    }),
  );
  stub.close();
} catch (err) {
  failed = true;
  console.error(err);
} finally {
  await system.close({ timeoutMs: 2000 });
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
if (failed) process.exitCode = 1;
