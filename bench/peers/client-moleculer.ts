/**
 * The Moleculer peer of the peers suite, from the caller: a broker on loopback TCP
 * (bench/peers/moleculer-node.ts) and two worker nodes (bench/peers/peer-worker-moleculer.ts)
 * serving `sq`. Asks are `broker.call('sq.square')`, balanced by Moleculer (round-robin);
 * tells are `broker.emit('sq.count')`, which one `sq` instance handles; `total` calls one node.
 */
import type moleculer from 'moleculer';
import { moleculerBroker, type MoleculerCluster } from './moleculer-node.js';
import { startWorker, stopWorker, type SquareClient, type SquareValue, type WorkerProcess } from './square.js';

export class MoleculerClient implements SquareClient {
  private constructor(
    readonly broker: moleculer.ServiceBroker,
    readonly workers: WorkerProcess[],
    private readonly workerIds: string[],
  ) {}

  /** `cluster.nodes[0]` is this caller; the other two are started here. */
  static async start(cluster: MoleculerCluster, onPid: (pid: number) => void): Promise<MoleculerClient> {
    const [me, ...others] = cluster.nodes;
    const broker = moleculerBroker(cluster, me!.nodeID);
    const workers: WorkerProcess[] = [];
    try {
      await broker.start();
      for (const n of others) {
        const w = await startWorker('peer-worker-moleculer.js', [n.nodeID, JSON.stringify(cluster)]);
        workers.push(w);
        onPid(w.pid);
      }
      const deadline = Date.now() + 30_000;
      const ids = others.map((n) => n.nodeID);
      // hasService is in the registry's JS, not in its typings
      const registry = broker.registry as unknown as { hasService(name: string, nodeID: string): boolean };
      const ready = (): boolean => ids.every((id) => registry.hasService('sq', id));
      while (!ready()) {
        if (Date.now() > deadline) throw new Error('the Moleculer workers were not discovered within 30 s');
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      return new MoleculerClient(broker, workers, ids);
    } catch (err) {
      await Promise.all(workers.map((w) => stopWorker(w)));
      await broker.stop();
      throw err;
    }
  }

  ask(_worker: number, v: SquareValue): Promise<number> {
    return this.broker.call('sq.square', v);
  }

  tell(_worker: number, v: SquareValue): void {
    void this.broker.emit('sq.count', v);
  }

  total(worker: number): Promise<number> {
    return this.broker.call('sq.total', undefined, { nodeID: this.workerIds[worker & 1]! });
  }

  async close(): Promise<void> {
    await Promise.all(this.workers.map((w) => stopWorker(w)));
    await this.broker.stop();
  }
}
