/**
 * How the peers suite configures a Moleculer 0.14 broker: the TCP transporter on loopback only
 * (no UDP discovery; a static list of `127.0.0.1:<port>/<nodeID>` endpoints; the local node
 * advertises 127.0.0.1 as its only address, so no peer ever dials another interface), one of
 * its serializers, and logging, metrics and tracing off.
 */
import moleculer from 'moleculer';

export type MoleculerSerializer = 'JSON' | 'MsgPack';

/** Node IDs and TCP ports of one run's three brokers: the caller and two workers. */
export interface MoleculerCluster {
  namespace: string;
  serializer: MoleculerSerializer;
  nodes: Array<{ nodeID: string; port: number }>;
}

export function moleculerBroker(cluster: MoleculerCluster, nodeID: string): moleculer.ServiceBroker {
  const broker = new moleculer.ServiceBroker({
    namespace: cluster.namespace,
    nodeID,
    transporter: {
      type: 'TCP',
      options: {
        udpDiscovery: false,
        useHostname: false,
        urls: cluster.nodes.map((n) => `127.0.0.1:${n.port}/${n.nodeID}`),
      },
    },
    serializer: cluster.serializer,
    logger: false,
    metrics: { enabled: false },
    tracing: { enabled: false },
  });
  // The node's INFO packet tells peers its addresses (every interface by default); loopback only.
  const local = broker.registry.nodes.localNode as unknown as { ipList: string[]; hostname: string };
  local.ipList = ['127.0.0.1'];
  local.hostname = '127.0.0.1';
  return broker;
}
