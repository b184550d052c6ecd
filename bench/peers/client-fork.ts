/**
 * The hand-written peer of the peers suite: what a user would write with Node alone. Two workers
 * started with `child_process.fork` (bench/peers/peer-worker-fork.ts), requests carrying a
 * correlation id, a Map of pending promises, answers matched by id; the caller alternates
 * between the two workers.
 */
import { startWorker, stopWorker, type SquareClient, type SquareValue, type WorkerProcess } from './square.js';

interface Pending {
  resolve: (r: number) => void;
  reject: (e: Error) => void;
}

export class ForkClient implements SquareClient {
  private nextId = 1;
  private readonly pending = new Map<number, Pending>();

  private constructor(readonly workers: WorkerProcess[]) {
    for (const w of workers) {
      w.child.on('message', (m: { id?: number; r?: number }) => {
        if (m.id === undefined) return;
        const p = this.pending.get(m.id);
        if (!p) return;
        this.pending.delete(m.id);
        p.resolve(m.r!);
      });
      w.child.once('exit', (code, signal) => {
        const err = new Error(`fork worker ${w.pid} exited (${signal ?? code})`);
        for (const p of this.pending.values()) p.reject(err);
        this.pending.clear();
      });
    }
  }

  static async start(serialization: 'json' | 'advanced'): Promise<ForkClient> {
    const workers: WorkerProcess[] = [];
    try {
      for (let i = 0; i < 2; i++) workers.push(await startWorker('peer-worker-fork.js', [], { serialization }));
    } catch (err) {
      await Promise.all(workers.map((w) => stopWorker(w)));
      throw err;
    }
    return new ForkClient(workers);
  }

  private request(worker: number, message: Record<string, unknown>): Promise<number> {
    const id = this.nextId++;
    return new Promise<number>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.workers[worker & 1]!.child.send({ id, ...message });
    });
  }

  ask(worker: number, v: SquareValue): Promise<number> {
    return this.request(worker, { v });
  }

  tell(worker: number, v: SquareValue): void {
    this.workers[worker & 1]!.child.send({ c: v });
  }

  total(worker: number): Promise<number> {
    return this.request(worker, { total: true });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => stopWorker(w)));
  }
}
