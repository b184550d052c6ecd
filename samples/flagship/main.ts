/**
 * The mpbus flagship: the load-balancer/worker deployment of DPDK's multi-process model, done
 * with actors. This process is the primary: it starts N worker processes (secondaries), puts a
 * router over the group 'workers', pushes jobs through it with a bounded window, and checks at
 * the end that every job was answered exactly once. The workers are a supervised pool
 * (`system.launch()`): `--kill-one-worker` SIGKILLs one mid-run, the router gives its unanswered
 * jobs to the other workers, and the pool starts a new worker in its place, which takes jobs too.
 *
 * Run: `npm start` (or `node dist/samples/flagship/main.js --help`).
 */
import 'reflect-metadata';
import type { ChildProcess } from 'node:child_process';
import type { Server } from 'node:http';
import { constants as osConstants } from 'node:os';
import { formatCpuList, startActorSystem, type ActorSystem, type ProcessPool, type Router, type RouterStats } from '../../src/index.js';
import type { JobContract, JobResult } from './jobs.js';
import { alive, cpuSeconds, cpusOf, leftovers, until } from '../lib/processes.js';
import { parseOptions, type FlagshipOptions } from './options.js';
import { freePort, haveNatsServer, startNatsServer, stopProcess } from '../lib/nats.js';
import { launchWorkers, startHosts, stopHosts, type HostProcess } from './workers.js';
import { serveMetrics } from './metrics.js';

/** Set on Ctrl-C / SIGTERM: the jobs cut short then are not worth a line each. */
let interrupting = false;

/** How long the hosts get to close their groups on Ctrl-C (each lets its jobs in hand finish for up to 2 s). */
const HOST_STOP_MS = 3000;

/** Distinct job keys (what the consistent-hash strategy spreads). */
const KEYS = 1024;

/** What one run measured. */
interface Outcome {
  jobs: number;
  answered: number;
  lost: number;
  duplicates: number;
  failed: number;
  redelivered: number;
  perWorker: Record<string, number>;
  /** Jobs answered by each worker process. */
  perPid: Map<number, number>;
  elapsedMs: number;
  latenciesUs: Float64Array;
  killed: { name: string; pid: number; atMs: number } | undefined;
}

/** The worker started in place of the killed one, once it is ready. */
interface Successor {
  name: string;
  pid: number;
  afterMs: number;
}

function percentile(sorted: Float64Array, p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

class Progress {
  private last = 0;
  constructor(
    private readonly options: FlagshipOptions,
    private readonly startedAt: number,
  ) {}

  update(answered: number, pushed: number, force = false): void {
    if (this.options.json) return;
    const now = performance.now();
    const tty = process.stdout.isTTY;
    if (!force && now - this.last < (tty ? 100 : 1000)) return;
    this.last = now;
    const elapsed = (now - this.startedAt) / 1000;
    const fraction = this.options.jobs !== undefined ? answered / this.options.jobs : Math.min(1, elapsed / this.options.seconds);
    const width = 30;
    const filled = Math.round(fraction * width);
    const bar = `[${'#'.repeat(filled)}${'-'.repeat(width - filled)}] ${(fraction * 100).toFixed(0).padStart(3)}%`;
    const line = `${bar} ${answered.toLocaleString('en-US')} answered, ${(pushed - answered).toLocaleString('en-US')} in flight, ${Math.round(answered / Math.max(elapsed, 0.001)).toLocaleString('en-US')} jobs/s`;
    if (tty) process.stdout.write(`\r${line}\x1b[K`);
    else console.log(line);
  }

  done(): void {
    if (!this.options.json && process.stdout.isTTY) process.stdout.write('\n');
  }
}

/** Pushes the jobs through the router, `window` at a time, and records every answer. */
async function pushJobs(
  options: FlagshipOptions,
  router: Pick<Router<JobContract>, 'ref' | 'stats'>,
  workers: Array<{ name: string; pid: number }>,
  successor: () => Successor | undefined,
): Promise<Outcome> {
  const payload = new Uint8Array(options.payloadBytes).map((_, i) => (i * 31 + 7) & 0xff);
  // Made once, not per job: the keys (1,024 of them) and the options, whose keys an ask checks
  // once while the same object comes again (docs/actors.md); a new options object per job was
  // checked every time (~1% of this process's CPU in a profile).
  const keys = Array.from({ length: KEYS }, (_, k) => `k${k}`);
  const askOptions = { timeoutMs: 120_000 };
  let answers = new Uint8Array(1 << 16);
  let latencies = new Float64Array(1 << 16);
  const perWorker: Record<string, number> = {};
  const perPid = new Map<number, number>();
  let pushed = 0;
  let answered = 0;
  let duplicates = 0;
  let failed = 0;
  let inFlight = 0;
  let killed: Outcome['killed'];
  const startedAt = performance.now();
  const progress = new Progress(options, startedAt);
  const stillPushing = (): boolean => (options.jobs !== undefined ? pushed < options.jobs : performance.now() - startedAt < options.seconds * 1000);
  // With --jobs, the last fifth waits for the killed worker's successor, so it takes jobs too.
  const holding = (): boolean => options.jobs !== undefined && killed !== undefined && successor() === undefined && pushed >= options.jobs * 0.8;
  const killPoint = (): boolean => (options.jobs !== undefined ? pushed >= options.jobs * 0.4 : performance.now() - startedAt >= options.seconds * 400);

  return new Promise<Outcome>((resolve) => {
    let finished = false;
    const finish = (): void => {
      if (finished) return;
      finished = true;
      progress.update(answered, pushed, true);
      progress.done();
      let lost = 0;
      for (let id = 0; id < pushed; id++) if (answers[id] === 0) lost++;
      resolve({
        jobs: pushed,
        answered,
        lost,
        duplicates,
        failed,
        redelivered: router.stats().redelivered,
        perWorker,
        perPid,
        elapsedMs: performance.now() - startedAt,
        latenciesUs: latencies.slice(0, answered),
        killed,
      });
    };
    const grow = (id: number): void => {
      if (id < answers.length) return;
      const bigger = new Uint8Array(answers.length * 2);
      bigger.set(answers);
      answers = bigger;
    };
    const record = (result: JobResult, sentAt: number): void => {
      grow(result.id);
      if (answers[result.id]! > 0) duplicates++;
      answers[result.id]!++;
      if (answered === latencies.length) {
        const bigger = new Float64Array(latencies.length * 2);
        bigger.set(latencies);
        latencies = bigger;
      }
      latencies[answered++] = (performance.now() - sentAt) * 1000;
      perWorker[result.worker] = (perWorker[result.worker] ?? 0) + 1;
      perPid.set(result.pid, (perPid.get(result.pid) ?? 0) + 1);
    };
    const pump = (): void => {
      while (inFlight < options.window && !interrupting && stillPushing() && !holding()) {
        const id = pushed++;
        grow(id);
        inFlight++;
        const sentAt = performance.now();
        router.ref.ask('job', { id, key: keys[id % KEYS]!, payload }, askOptions).then(
          (result) => {
            inFlight--;
            record(result, sentAt);
            settle(true);
          },
          (err: unknown) => {
            inFlight--;
            failed++;
            if (!options.json && !interrupting) console.error(`job ${id} failed: ${(err as Error).message}`);
            settle(false);
          },
        );
      }
      if (options.killOneWorker && !killed && killPoint()) {
        const victim = workers[0]!;
        killed = { name: victim.name, pid: victim.pid, atMs: performance.now() - startedAt };
        process.kill(victim.pid, 'SIGKILL');
        if (!options.json) console.log(`${process.stdout.isTTY ? '\n' : ''}killed ${victim.name} (pid ${victim.pid}) with SIGKILL`);
      }
    };
    let refillScheduled = false;
    const refillNextTurn = (): void => {
      refillScheduled = false;
      pump();
      if (inFlight === 0 && !stillPushing()) finish();
    };
    const settle = (answeredOk: boolean): void => {
      progress.update(answered, pushed);
      if (inFlight === 0 && !stillPushing()) {
        finish();
        return;
      }
      // An answer refills at once, in its own continuation: the transport sends every ask made
      // in this turn together at its end. Deferring the refill to a setImmediate put it behind
      // the receive loop's next drain, which may wait for messages (spinUs), while the workers
      // had run out of jobs: ~10-15% fewer jobs/s (docs/benchmarks.md, "Fifth pass"). A failure
      // refills on the next turn: asks that fail at once (no worker left) would otherwise
      // refill in a chain of microtasks that never lets the event loop turn (signals, timers).
      if (answeredOk) pump();
      else if (!refillScheduled) {
        refillScheduled = true;
        setImmediate(refillNextTurn);
      }
    };
    pump();
    // In --seconds mode, nothing may be in flight when the time runs out while idle: check then too.
    const tick = setInterval(() => {
      pump();
      progress.update(answered, pushed);
      if (inFlight === 0 && !stillPushing()) {
        clearInterval(tick);
        finish();
      }
    }, 100);
    tick.unref();
  });
}

async function main(): Promise<number> {
  let options: FlagshipOptions | undefined;
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    console.error(`${(err as Error).message}\n(try --help)`);
    return 2;
  }
  if (!options) return 0;
  const prefix = `mpbus_flagship_${process.pid}`;
  const say = (text: string): void => {
    if (!options.json) console.log(text);
  };
  let system: ActorSystem | undefined;
  /** Without --hosts: this group's worker processes, a supervised pool. */
  let pool: ProcessPool | undefined;
  /** With --hosts: the host processes (each the primary of its own group, with its own workers). */
  let hosts: HostProcess[] = [];
  /** Every worker process of the pool seen (the killed one and its successor too): none may be left at the end. */
  const seen = new Set<number>();
  let nats: ChildProcess | undefined;
  let metricsServer: Server | undefined;
  const pids = (): number[] => [...seen, ...hosts.flatMap((h) => [h.pid, ...h.workers.map((w) => w.pid)])];
  const killHosts = (): void => {
    for (const pid of hosts.flatMap((h) => [h.pid, ...h.workers.map((w) => w.pid)])) if (alive(pid)) process.kill(pid, 'SIGKILL');
    nats?.kill('SIGKILL');
  };
  /**
   * Ends the hosts soon but cleanly: each is the primary of a group of its own, which it closes
   * when told to stop (its workers stop, its group's files are removed; a Ctrl-C at the terminal
   * reached it too, and does the same); those not gone within HOST_STOP_MS are killed. SIGKILLed
   * at once, they left their groups' files (28 MiB each).
   */
  const endHosts = async (): Promise<void> => {
    for (const h of hosts) if (h.child.connected) h.child.send({ type: 'stop' });
    await Promise.race([Promise.all(hosts.map((h) => h.exited)), new Promise((resolve) => setTimeout(resolve, HOST_STOP_MS).unref())]);
    killHosts();
  };
  // Ctrl-C or SIGTERM: this listener is the application's own, so mpbus leaves the first signal to
  // it (a second one would end the process at once); it exits with the shell's code for the signal.
  const interrupted = (signal: NodeJS.Signals): void => {
    interrupting = true;
    say(`\n${signal}: stopping the workers and leaving the group`);
    // The jobs in flight are abandoned anyway: the workers are killed at once (the pool waits
    // until they are gone), then this process leaves the group as its last member and removes
    // its files, well within the second a user waits after Ctrl-C.
    void endHosts()
      .then(() => pool?.close({ timeoutMs: 0 }))
      .then(() => system?.close({ timeoutMs: 150 }))
      .catch(() => undefined)
      .finally(() => process.exit(128 + osConstants.signals[signal]));
  };
  process.once('SIGINT', interrupted);
  process.once('SIGTERM', interrupted);
  const hostPrefixes = [...Array(options.hosts > 1 ? options.hosts : 0).keys()].map((i) => `${prefix}_h${i + 1}`);
  try {
    let cluster: { servers: string; name: string } | undefined;
    if (options.hosts > 1) {
      let servers = options.nats;
      if (servers === undefined) {
        if (!haveNatsServer()) throw new Error('--hosts needs nats-server (scripts/setup.sh installs it) or --nats URL');
        const port = await freePort();
        nats = await startNatsServer('127.0.0.1', port);
        servers = `nats://127.0.0.1:${port}`;
      }
      cluster = { servers, name: `flagship_${process.pid}` };
    }
    system = await startActorSystem({ filePrefix: prefix, procType: 'primary', askTimeoutMs: 120_000, handleSignals: true, ...(cluster ? { cluster } : {}) });
    if (options.metricsPort !== undefined) {
      const metrics = await serveMetrics(prefix, options.metricsPort);
      metricsServer = metrics.server;
      say(`metrics of group '${prefix}': http://127.0.0.1:${metrics.port}/metrics`);
    }
    let target: Pick<Router<JobContract>, 'ref' | 'stats'>;
    let restarted: Successor | undefined;
    let successor = (): Successor | undefined => ({ name: '', pid: 0, afterMs: 0 }); // --hosts: a host restarts its own workers
    let killable: Array<{ name: string; pid: number }>;
    /** The workers' CPUs as they started (distinct lists, space-separated). */
    let workerCpus = '';
    if (cluster) {
      // --hosts N: this process only pushes jobs; each host is a DPDK group of its own with a
      // router 'jobs' over its workers, and NATS gives each job to one host (a queue group).
      const c = cluster;
      say(`mpbus flagship: ${options.hosts} hosts (groups ${hostPrefixes.join(', ')}) joined through NATS at ${c.servers}, ${options.workers} workers each...`);
      hosts = await startHosts((i) => [hostPrefixes[i]!, `h${i + 1}`, String(options.workers), c.servers, c.name, options.strategy], options.hosts);
      const directory = system.cluster!.directory;
      await until(() => directory.holdersOf('jobs').length === options.hosts, 20_000, "every host's router 'jobs'");
      killable = hosts.flatMap((h) => h.workers);
      say(`hosts up: ${hosts.map((h) => `${h.name} (pid ${h.pid}: ${h.workers.map((w) => w.name).join(', ')})`).join('; ')}`);
      target = { ref: system.ref<JobContract>('jobs'), stats: (): RouterStats => ({ perWorker: {}, redelivered: 0, inFlight: 0 }) };
    } else {
      const router = system.router<JobContract>('jobs', {
        strategy: options.strategy,
        group: 'workers',
        key: (msg) => (msg as { key: string }).key,
        workerTimeoutMs: 120_000,
      });
      say(`mpbus flagship: primary pid ${process.pid}, group '${prefix}', starting ${options.workers} worker processes...`);
      pool = await launchWorkers(system, options.workers, 'worker', options.placement);
      for (const pid of pool.pids()) seen.add(pid);
      let diedAt = 0;
      pool.events$.subscribe((e) => {
        if (e.type === 'started') seen.add(e.child.pid);
        if (e.type === 'exited' && e.reason === 'crashed') diedAt = e.at;
        if (e.type === 'restarted') {
          restarted = { name: e.child.name, pid: e.child.pid, afterMs: Date.now() - diedAt };
          say(
            `${process.stdout.isTTY ? '\n' : ''}the pool started ${e.child.name} (pid ${e.child.pid}) in its place, ready ${restarted.afterMs} ms after the kill`,
          );
        }
      });
      await until(() => router.workers().length === options.workers, 10_000, 'the workers to join the group');
      killable = pool.children().map((slot) => ({ name: slot.child!.name, pid: slot.child!.pid }));
      workerCpus = [...new Set(killable.map((w) => cpusOf(w.pid)))].join(' ');
      say(
        `workers up: ${killable.map((w) => `${w.name} (pid ${w.pid})`).join(', ')}; CPUs: this process ${formatCpuList(system.runtime?.cpus ?? [])}, workers ${workerCpus}`,
      );
      target = router;
      // the successor counts once the router gives it jobs
      successor = () => (restarted && router.workers().includes(restarted.name) ? restarted : undefined);
    }
    say(
      options.jobs !== undefined
        ? `pushing ${options.jobs} jobs of ${options.payloadBytes} B, ${options.window} in flight, strategy ${options.strategy}`
        : `pushing jobs of ${options.payloadBytes} B for ${options.seconds} s, ${options.window} in flight, strategy ${options.strategy}`,
    );
    if (options.warmup > 0) {
      say(`warming up: ${options.warmup} jobs, not counted`);
      const warm = await pushJobs({ ...options, jobs: options.warmup, killOneWorker: false, json: true }, target, killable, () => successor());
      if (warm.lost + warm.duplicates + warm.failed > 0)
        throw new Error(`the warm-up lost ${warm.lost}, duplicated ${warm.duplicates} and failed ${warm.failed} jobs`);
    }
    // CPU of the measured run, per job: this process, and the workers alive at its start and end.
    const workerPids = pids();
    const workersCpuBefore = workerPids.map((pid) => cpuSeconds(pid));
    const callerCpuBefore = process.cpuUsage();
    const outcome = await pushJobs(options, target, killable, () => successor());
    const callerCpu = process.cpuUsage(callerCpuBefore);
    const workersCpu = workerPids.reduce((sum, pid, i) => {
      const [before, after] = [workersCpuBefore[i], cpuSeconds(pid)];
      return before === undefined || after === undefined ? sum : sum + after - before;
    }, 0);
    const cpuPerJobUs = {
      caller: outcome.answered > 0 ? (callerCpu.user + callerCpu.system) / outcome.answered : 0,
      workers: outcome.answered > 0 ? (workersCpu * 1e6) / outcome.answered : 0,
    };
    const started = pids();
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    await pool?.close({ timeoutMs: 2000 });
    await stopHosts(hosts);
    await system.close({ timeoutMs: 2000 });
    if (nats) await stopProcess(nats);
    const left = [prefix, ...hostPrefixes].flatMap((p) => leftovers(p));
    const strays = started.filter((pid) => alive(pid));
    const sorted = outcome.latenciesUs.sort();
    const throughput = Math.round(outcome.answered / (outcome.elapsedMs / 1000));
    const p50 = Math.round(percentile(sorted, 50));
    const p99 = Math.round(percentile(sorted, 99));
    const exactlyOnce = outcome.lost === 0 && outcome.duplicates === 0 && outcome.failed === 0 && outcome.answered === outcome.jobs;
    say('');
    say(
      `jobs ${outcome.jobs}, answered ${outcome.answered}, lost ${outcome.lost}, duplicates ${outcome.duplicates}, failed ${outcome.failed}: ${exactlyOnce ? 'every job answered exactly once' : 'NOT every job was answered exactly once'}`,
    );
    say(`throughput ${throughput.toLocaleString('en-US')} jobs/s over ${(outcome.elapsedMs / 1000).toFixed(1)} s; latency p50 ${p50} us, p99 ${p99} us`);
    say(`CPU per job: this process ${cpuPerJobUs.caller.toFixed(1)} us, the workers ${cpuPerJobUs.workers.toFixed(1)} us together`);
    say(
      `per worker: ${Object.entries(outcome.perWorker)
        .sort()
        .map(([w, n]) => `${w} ${n}`)
        .join(', ')}`,
    );
    if (outcome.killed) {
      say(
        cluster
          ? `killed ${outcome.killed.name} (pid ${outcome.killed.pid}) at ${(outcome.killed.atMs / 1000).toFixed(1)} s; its host's router gave its unanswered jobs to the host's other workers`
          : `killed ${outcome.killed.name} (pid ${outcome.killed.pid}) at ${(outcome.killed.atMs / 1000).toFixed(1)} s; ${outcome.redelivered} of its unanswered jobs were given to other workers`,
      );
      if (restarted)
        say(
          `${restarted.name} again (pid ${restarted.pid}), started by the pool in place of the killed one, answered ${outcome.perPid.get(restarted.pid) ?? 0} jobs`,
        );
    }
    say(
      left.length === 0 && strays.length === 0
        ? 'cleanup: no worker process, runtime dir or hugepage file left behind'
        : `cleanup FAILED: left ${[...left, ...strays.map((p) => `pid ${p}`)].join(', ')}`,
    );
    if (options.json) {
      console.log(
        JSON.stringify({
          jobs: outcome.jobs,
          answered: outcome.answered,
          lost: outcome.lost,
          duplicates: outcome.duplicates,
          workers: killable.length,
          hosts: options.hosts,
          perWorker: outcome.perWorker,
          throughputJobsPerSec: throughput,
          latencyP50Us: p50,
          latencyP99Us: p99,
          cpuPerJobUs: { caller: Number(cpuPerJobUs.caller.toFixed(2)), workers: Number(cpuPerJobUs.workers.toFixed(2)) },
          cpus: { caller: formatCpuList(system.runtime?.cpus ?? []), workers: workerCpus },
          failed: outcome.failed,
          redelivered: outcome.redelivered,
          killedWorker: outcome.killed?.name ?? null,
          restartedWorker: restarted?.name ?? null,
          restartedPid: restarted?.pid ?? null,
          restartedJobs: restarted ? (outcome.perPid.get(restarted.pid) ?? 0) : null,
          leftovers: [...left, ...strays.map((p) => `pid ${p}`)],
        }),
      );
    }
    return exactlyOnce && left.length === 0 && strays.length === 0 ? 0 : 1;
  } catch (err) {
    console.error(`flagship failed: ${(err as Error).message}`);
    metricsServer?.close();
    metricsServer?.closeAllConnections();
    await endHosts();
    await system?.close({ timeoutMs: 500 }).catch(() => undefined);
    return 1;
  }
}

process.exitCode = await main();
