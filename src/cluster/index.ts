/** Beyond one host: the actor system's names across hosts, bridged through NATS (docs/cluster.md). */
// Gives ActorSystem its `cluster` option and `system.cluster`.
import './join-cluster.js';
export { ClusterTransport, ClusterHeaders, subjectToken, type ClusterOptions, type ClusterBroadcast } from './cluster-transport.js';
export { Directory, type NodeAnnouncement, type NodeRemoved } from './directory.js';
export type { ClusterEngine, EngineHeaders, EngineMessage, EngineStatus, EngineSubscription, SubscribeOptions, PublishOptions } from './engine.js';
export { NatsEngine, type NatsEngineOptions } from './nats-engine.js';
