/**
 * The caller process of the peers suite (bench/suites/peers.ts): starts one implementation with
 * its two worker processes, runs the measurements of bench/peers/square-phases.ts against it
 * and sends the results to the suite over the fork IPC channel; then waits, idle, until the
 * suite says stop (the suite measures the waiting processes' CPU meanwhile).
 *
 *   node peer-caller.js '<CallerConfig JSON>'
 *
 * Messages to the suite: `{ pid }` for each worker as it starts, `{ result }` once, `{ error }`.
 */
import { ForkClient } from './client-fork.js';
import { MoleculerClient } from './client-moleculer.js';
import { MpbusClients } from './client-mpbus.js';
import type { MoleculerCluster } from './moleculer-node.js';
import { sequential, tells, windowed, type PhaseResult } from './square-phases.js';
import { onStopRequest, type SquareClient } from './square.js';

export interface CallerConfig {
  impl: 'mpbus' | 'fork' | 'moleculer';
  /** mpbus: the group's file prefix. */
  filePrefix?: string;
  /** fork: the IPC channel's serialization. */
  serialization?: 'json' | 'advanced';
  /** moleculer: the three nodes (this caller first). */
  cluster?: MoleculerCluster;
  seconds: number;
  /** Sequential asks at most (besides the time limit). */
  seqAsks: number;
  /** Windows (asks in flight) of the main configuration; others measure 128 only. */
  windows: number[];
  /** Untimed run before each windowed measurement (JIT, connections, buffers). */
  warmupSeconds: number;
}

/** One configuration's results (mpbus has two: router and direct). */
export interface ConfigResult {
  name: string;
  seq: PhaseResult;
  windows: Record<string, PhaseResult & { callerMaxRssMb: number }>;
  tell: PhaseResult;
}

export interface CallerMessage {
  pid?: number;
  result?: ConfigResult[];
  error?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as CallerConfig;
const tellSuite = (m: CallerMessage): void => void process.send?.(m);
const onPid = (pid: number): void => tellSuite({ pid });

async function measure(name: string, client: SquareClient, windows: number[]): Promise<ConfigResult> {
  const s = config.seconds;
  const seq = await sequential(client, s, config.seqAsks);
  const results: ConfigResult['windows'] = {};
  for (const w of windows) {
    if (config.warmupSeconds > 0) await windowed(client, w, config.warmupSeconds);
    const r = await windowed(client, w, s);
    results[w] = { ...r, callerMaxRssMb: Math.round(process.resourceUsage().maxRSS / 1024) };
  }
  const tell = await tells(client, s);
  return { name, seq, windows: results, tell };
}

let close: () => Promise<void> = async () => {};
onStopRequest(() => close());
try {
  const result: ConfigResult[] = [];
  if (config.impl === 'mpbus') {
    const mpbus = await MpbusClients.start(config.filePrefix!, onPid);
    close = () => mpbus.close();
    result.push(await measure('router', mpbus.router, config.windows));
    result.push(await measure('direct', mpbus.direct, [128]));
  } else if (config.impl === 'fork') {
    const fork = await ForkClient.start(config.serialization ?? 'json');
    for (const w of fork.workers) onPid(w.pid);
    close = () => fork.close();
    result.push(await measure(`fork_${config.serialization}`, fork, config.windows));
  } else {
    const mol = await MoleculerClient.start(config.cluster!, onPid);
    close = () => mol.close();
    result.push(await measure(`moleculer_${config.cluster!.serializer}`, mol, config.windows));
  }
  tellSuite({ result });
} catch (err) {
  tellSuite({ error: (err as Error).stack ?? String(err) });
}
