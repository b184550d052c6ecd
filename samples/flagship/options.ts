/** Command line of the flagship. */
import { availableParallelism } from 'node:os';
import { parseArgs } from 'node:util';
import type { Placement, RoutingStrategy } from '../../src/index.js';

export interface FlagshipOptions {
  /** Fixed number of jobs; undefined: push jobs for `seconds`. */
  jobs: number | undefined;
  seconds: number;
  workers: number;
  payloadBytes: number;
  strategy: RoutingStrategy;
  window: number;
  /** Jobs pushed (and checked) before the measured run, so that it measures warmed-up processes. */
  warmup: number;
  killOneWorker: boolean;
  json: boolean;
  /** Groups standing in for hosts, joined through NATS (1: no cluster). */
  hosts: number;
  /** NATS server of --hosts (default: a local nats-server the sample starts). */
  nats: string | undefined;
  /** Serve the group's Prometheus metrics on http://127.0.0.1:<port>/metrics (0: any free port). */
  metricsPort: number | undefined;
  /** Where the workers and this process run (`system.launch()`'s `placement`). */
  placement: Placement;
}

/** Workers the machine can take: one per CPU, at least 2 (the primary shares the CPUs). */
export const defaultWorkers = Math.max(2, Math.min(8, availableParallelism()));

export const usage = `mpbus flagship: one primary distributes jobs to worker processes through an actor router
over shared-memory mailboxes (DPDK rings in hugepage memory), and checks every job is answered once.

Usage: npm start -- [options]        (or: node dist/samples/flagship/main.js [options])

  --jobs N            push exactly N jobs (default: push jobs for --seconds)
  --seconds S         how long to push jobs when --jobs is not given (default 10)
  --workers N         worker processes (default ${defaultWorkers}: one per CPU, at least 2; with --hosts:
                      per host, default 1)
  --payload BYTES     payload size of each job (default 64)
  --strategy NAME     round-robin | least-loaded | consistent-hash (default round-robin)
  --window N          jobs in flight at once (default 64 per worker)
  --warmup N          push N jobs first and leave them out of the figures, so that they are of
                      warmed-up processes, not of their start (JIT compiling; default 0)
  --kill-one-worker   SIGKILL one worker mid-run: its in-flight jobs go to the others, none is lost,
                      and the pool starts a new worker in its place (with --jobs, the last fifth
                      of the jobs waits for it, so it takes jobs too)
  --hosts N           N groups standing in for N hosts, each with its own router and --workers
                      workers, joined through one local nats-server (started and stopped by the
                      sample); this process pushes the jobs, NATS gives each to one host
  --nats URL          with --hosts: use this NATS server instead of starting one
  --metrics-port P    serve the group's Prometheus metrics (its processes and actors, read from
                      the group's shared counters) at http://127.0.0.1:P/metrics while it runs
                      (0: a free port, printed)
  --placement P       spread | float: where the workers run (system.launch()'s placement; default
                      spread: this process, the busy caller, keeps a CPU and the workers share the
                      others; a pool's own default is float; docs/process-model.md, "CPU placement")
  --json              no progress bar; end with one line of JSON:
                      {jobs, answered, lost, duplicates, workers, perWorker,
                       throughputJobsPerSec, latencyP50Us, latencyP99Us, cpuPerJobUs: {caller, workers},
                       cpus: {caller, workers}}
                      (CPU per job of the measured run: this process; the worker processes, summed)
  --help              this text

Exit status 0 when every job was answered exactly once and nothing was left behind.`;

function int(name: string, text: string | undefined, fallback: number, min: number, max: number): number {
  if (text === undefined) return fallback;
  const v = Number(text);
  if (!Number.isInteger(v) || v < min || v > max) throw new Error(`--${name} must be an integer in ${min}..${max}, got '${text}'`);
  return v;
}

/** Parses argv; returns undefined after printing help. Throws with a message on bad options. */
export function parseOptions(argv: string[]): FlagshipOptions | undefined {
  const { values } = parseArgs({
    args: argv,
    options: {
      jobs: { type: 'string' },
      seconds: { type: 'string' },
      workers: { type: 'string' },
      payload: { type: 'string' },
      strategy: { type: 'string' },
      window: { type: 'string' },
      warmup: { type: 'string' },
      'kill-one-worker': { type: 'boolean' },
      json: { type: 'boolean' },
      hosts: { type: 'string' },
      nats: { type: 'string' },
      'metrics-port': { type: 'string' },
      placement: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help) {
    console.log(usage);
    return undefined;
  }
  const strategy = (values.strategy ?? 'round-robin') as RoutingStrategy;
  if (!['round-robin', 'least-loaded', 'consistent-hash'].includes(strategy)) {
    throw new Error(`--strategy must be round-robin, least-loaded or consistent-hash, got '${strategy}'`);
  }
  // This process is the busy caller and the jobs are light: the shape 'spread' is for (the pool's
  // default floats; docs/process-model.md, "CPU placement").
  const placement = (values.placement ?? 'spread') as Placement;
  if (placement !== 'spread' && placement !== 'float') throw new Error(`--placement must be spread or float, got '${placement}'`);
  const hosts = int('hosts', values.hosts, 1, 1, 16);
  if (values.nats !== undefined && hosts < 2) throw new Error('--nats goes with --hosts N (N >= 2)');
  const workers = int('workers', values.workers, hosts > 1 ? 1 : defaultWorkers, 1, 32);
  const killOneWorker = values['kill-one-worker'] ?? false;
  if (killOneWorker && workers < 2) throw new Error('--kill-one-worker needs at least 2 workers (someone must take over the jobs)');
  return {
    jobs: values.jobs === undefined ? undefined : int('jobs', values.jobs, 0, 1, 100_000_000),
    seconds: int('seconds', values.seconds, 10, 1, 3600),
    workers,
    payloadBytes: int('payload', values.payload, 64, 0, 16 * 1024 * 1024),
    strategy,
    window: int('window', values.window, 64 * workers * hosts, 1, 1_000_000),
    warmup: int('warmup', values.warmup, 0, 0, 100_000_000),
    killOneWorker,
    json: values.json ?? false,
    hosts,
    nats: values.nats,
    metricsPort: values['metrics-port'] === undefined ? undefined : int('metrics-port', values['metrics-port'], 0, 0, 65535),
    placement,
  };
}
