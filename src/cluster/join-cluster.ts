/**
 * The cluster layer joins the actor layer from above: it gives {@link ActorSystem} its `cluster`
 * option (a system made with it talks through a {@link ClusterTransport} over the transport it
 * was given) and `system.cluster`, registered as a transport layer of the actor system, so that
 * the actor layer imports nothing of this one. src/cluster/index.ts loads it, and with it the
 * package's entry.
 */
import { ActorSystem, addTransportLayer } from '../actors/system.js';
import { ClusterTransport, clusterSettings, type ClusterOptions } from './cluster-transport.js';

declare module '../actors/system.js' {
  interface ActorSystemOptions {
    /**
     * Joins a cluster of hosts through NATS: names no process of this group holds are looked up
     * on the other hosts (see docs/cluster.md). Await {@link ActorSystem.ready} before relying on it.
     */
    cluster?: ClusterOptions;
  }
  interface ActorSystem {
    /** The cluster bridge, when this system joined a cluster (broadcast topics, directory of other hosts). */
    readonly cluster: ClusterTransport | undefined;
  }
}

addTransportLayer(
  (transport, options) => (options.cluster ? new ClusterTransport(transport, options.cluster) : transport),
  (options) => void (options.cluster !== undefined && clusterSettings(options.cluster)),
);

Object.defineProperty(ActorSystem.prototype, 'cluster', {
  configurable: true,
  get(this: ActorSystem): ClusterTransport | undefined {
    return this.transport instanceof ClusterTransport ? this.transport : undefined;
  },
});
