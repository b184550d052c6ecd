/**
 * A worker node of the Moleculer rows of the peers suite (bench/peers/client-moleculer.ts is its
 * caller): a broker (bench/peers/moleculer-node.ts) with the service `sq`, whose action `square`
 * replies the square and `total` the number of `sq.count` events handled.
 *
 *   node peer-worker-moleculer.js <nodeID> <cluster JSON>
 */
import { moleculerBroker, type MoleculerCluster } from './moleculer-node.js';
import { onStopRequest, square, type SquareValue } from './square.js';

const [nodeID, clusterJson] = process.argv.slice(2);
if (!nodeID || !clusterJson || !process.send) {
  console.error('peer-worker-moleculer.js is started by bench/peers/client-moleculer.ts');
  process.exit(2);
}

const broker = moleculerBroker(JSON.parse(clusterJson) as MoleculerCluster, nodeID);
let counted = 0;
broker.createService({
  name: 'sq',
  actions: {
    square: (ctx) => square(ctx.params as SquareValue),
    total: () => counted,
  },
  events: {
    'sq.count': () => {
      counted++;
    },
  },
});
await broker.start();
onStopRequest(() => broker.stop());
process.send({ ready: true });
