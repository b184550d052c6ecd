/**
 * The mpbus side of the peers suite, from the caller: this process is the group's primary; two
 * worker processes (bench/peers/peer-worker-mpbus.ts) each hold an actor in the group
 * `squarers`. Two clients over one actor system: `router` asks a router over the group (what the
 * flagship does), `direct` asks the two named actors in turn. Public API only
 * (`startActorSystem`, `system.router`, `system.ref`, `ask`, `tell`).
 */
import 'reflect-metadata';
import { startActorSystem, type ActorRef, type ActorSystem, type Router } from '../../src/index.js';
import type { Placement } from '../../src/runtime/cpus.js';
import { benchPlacement, CALLER_PLACEMENT } from '../lib.js';
import { startWorker, stopWorker, type SquareClient, type SquareValue, type WorkerProcess } from './square.js';

interface SquareContract {
  square: { msg: SquareValue; reply: number };
  count: { msg: SquareValue; reply: void };
  total: { msg: void; reply: number };
}

/** Asks wait this long at most; a hung run fails rather than waiting for the suite's timeout. */
const ASK_TIMEOUT_MS = 60_000;

export class MpbusClients {
  readonly router: SquareClient;
  readonly direct: SquareClient;

  private constructor(
    readonly system: ActorSystem,
    readonly workers: WorkerProcess[],
    routerPool: Router<SquareContract>,
    named: Array<ActorRef<SquareContract>>,
  ) {
    const opts = { timeoutMs: ASK_TIMEOUT_MS };
    const total = (worker: number): Promise<number> => named[worker & 1]!.ask('total', undefined, opts);
    const pool = routerPool.ref;
    this.router = {
      ask: (_worker, v) => pool.ask('square', v, opts),
      tell: (_worker, v) => pool.tell('count', v),
      total,
    };
    this.direct = {
      ask: (worker, v) => named[worker & 1]!.ask('square', v, opts),
      tell: (worker, v) => named[worker & 1]!.tell('count', v),
      total,
    };
  }

  /**
   * Starts the group (this process as primary) and its two workers, placed as `system.launch()`
   * places a pool (`placement`, src/runtime/cpus.ts); `onPid` hears each worker's PID at once.
   */
  static async start(filePrefix: string, onPid: (pid: number) => void, placement: Placement = CALLER_PLACEMENT): Promise<MpbusClients> {
    const placed = benchPlacement(placement);
    const system = await startActorSystem({ filePrefix, procType: 'primary', askTimeoutMs: ASK_TIMEOUT_MS, ...(placed.caller ? { cpus: placed.caller } : {}) });
    const workers: WorkerProcess[] = [];
    try {
      const router = system.router<SquareContract>('squares', { strategy: 'round-robin', group: 'squarers', workerTimeoutMs: ASK_TIMEOUT_MS });
      for (let i = 0; i < 2; i++) {
        const w = await startWorker('peer-worker-mpbus.js', [filePrefix, `sq-${i + 1}`, placed.workers]);
        workers.push(w);
        onPid(w.pid);
      }
      const deadline = Date.now() + 20_000;
      while (router.workers().length < 2) {
        if (Date.now() > deadline) throw new Error('the router did not see both workers within 20 s');
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      const named = [system.ref<SquareContract>('sq-1'), system.ref<SquareContract>('sq-2')];
      return new MpbusClients(system, workers, router, named);
    } catch (err) {
      await Promise.all(workers.map((w) => stopWorker(w)));
      await system.close({ timeoutMs: 1000 });
      throw err;
    }
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => stopWorker(w)));
    await this.system.close({ timeoutMs: 1000 });
  }
}
