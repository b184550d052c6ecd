/**
 * The caller process of the peers suite (bench/suites/peers.ts): starts one implementation with
 * its two worker processes, then runs the measurements of bench/peers/square-phases.ts that the
 * suite asks for over the fork IPC channel, one at a time, so the suite can interleave the
 * implementations; between commands every process of it waits idle.
 *
 *   node peer-caller.js '<CallerConfig JSON>'
 *
 * To the suite: `{ pid }` for each worker as it starts, `{ ready: configs }`, then
 * `{ id, result }` or `{ id, error }` per command; `{ error }` when starting failed.
 */
import { ForkClient } from './client-fork.js';
import { MoleculerClient } from './client-moleculer.js';
import { MpbusClients } from './client-mpbus.js';
import type { Placement } from '../../src/runtime/cpus.js';
import type { MoleculerCluster } from './moleculer-node.js';
import { sequential, tells, windowed, type PhaseResult } from './square-phases.js';
import { onStopRequest, type SquareClient } from './square.js';

export interface CallerConfig {
  impl: 'mpbus' | 'fork' | 'moleculer';
  /** mpbus: the group's file prefix. */
  filePrefix?: string;
  /** mpbus: where the caller and its workers run. */
  placement?: Placement;
  /** fork: the IPC channel's serialization. */
  serialization?: 'json' | 'advanced';
  /** moleculer: the three nodes (this caller first). */
  cluster?: MoleculerCluster;
}

/** One measurement of one configuration (mpbus has two: `router` and `direct`). */
export interface PhaseCommand {
  id: number;
  config: string;
  phase: 'seq' | 'window' | 'tell';
  seconds: number;
  /** seq: asks at most (besides the time limit). */
  maxAsks?: number;
  /** window: asks in flight. */
  window?: number;
  /** window: an untimed run first (JIT, connections, buffers). */
  warmupSeconds?: number;
}

export interface CallerMessage {
  pid?: number;
  ready?: string[];
  id?: number;
  result?: PhaseResult;
  error?: string;
}

const config = JSON.parse(process.argv[2] ?? '{}') as CallerConfig;
const toSuite = (m: CallerMessage): void => void process.send?.(m);
const onPid = (pid: number): void => toSuite({ pid });

async function run(client: SquareClient, cmd: PhaseCommand): Promise<PhaseResult> {
  if (cmd.phase === 'seq') return sequential(client, cmd.seconds, cmd.maxAsks ?? 10_000);
  if (cmd.phase === 'tell') return tells(client, cmd.seconds);
  const window = cmd.window ?? 128;
  if (cmd.warmupSeconds) await windowed(client, window, cmd.warmupSeconds);
  return windowed(client, window, cmd.seconds);
}

let close: () => Promise<void> = async () => {};
onStopRequest(() => close());
try {
  const clients = new Map<string, SquareClient>();
  if (config.impl === 'mpbus') {
    const mpbus = await MpbusClients.start(config.filePrefix!, onPid, config.placement);
    close = () => mpbus.close();
    clients.set('router', mpbus.router).set('direct', mpbus.direct);
  } else if (config.impl === 'fork') {
    const fork = await ForkClient.start(config.serialization ?? 'json');
    for (const w of fork.workers) onPid(w.pid);
    close = () => fork.close();
    clients.set('fork', fork);
  } else {
    const mol = await MoleculerClient.start(config.cluster!, onPid);
    close = () => mol.close();
    clients.set('moleculer', mol);
  }
  // One command at a time: the suite waits for each answer before it sends the next.
  process.on('message', (cmd: Partial<PhaseCommand>) => {
    if (cmd.id === undefined || cmd.phase === undefined) return;
    const client = clients.get(cmd.config ?? '');
    if (!client) {
      toSuite({ id: cmd.id, error: `no configuration '${cmd.config}' here (have ${[...clients.keys()].join(', ')})` });
      return;
    }
    run(client, cmd as PhaseCommand).then(
      (result) => toSuite({ id: cmd.id, result }),
      (err: unknown) => toSuite({ id: cmd.id, error: (err as Error).stack ?? String(err) }),
    );
  });
  toSuite({ ready: [...clients.keys()] });
} catch (err) {
  toSuite({ error: (err as Error).stack ?? String(err) });
}
