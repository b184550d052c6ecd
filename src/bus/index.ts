/** The rte_mp bus: DPDK's IPC between the processes of a group, as RxJS and promises. */
export { MpBus, PEER_SEND_TIMEOUT_MS, STUCK_PEER_SEND_TIMEOUT_MS } from './mp-bus.js';
export { RESERVED_NAME_PREFIX } from './mp-checks.js';
export {
  MpErrorCodes,
  MpReplyWith,
  replyWith,
  type MpBusOptions,
  type MpHandler,
  type MpMessage,
  type MpReply,
  type MpRequestOptions,
  type MpRequestResult,
  type MpRole,
  type MpSendOptions,
  type MpMessageOptions,
} from './types.js';
