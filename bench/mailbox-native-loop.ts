/**
 * The native mailbox path alone, for counting its instructions per message (development aid):
 * one process sends `batches` batches of 64 raw 60-byte messages to its own mailbox with
 * mbxSendMany and drains each with mbxDrain, then leaves the group. Run it under callgrind and
 * compare two builds function by function (the JS around it is the same; whole-program counts
 * vary with V8's compiler):
 *
 *   valgrind --tool=callgrind --callgrind-out-file=cg.out node dist/bench/mailbox-native-loop.js 1000
 *   callgrind_annotate cg.out | grep mpbus.node     # MbxSendMany, MbxDrain, Check, ReleaseHeld
 *
 * divided by the messages it prints (64,000 for 1000 batches).
 */
import { GroupFiles } from '../src/runtime/group.js';
import { MailboxSystem, Runtime } from '../src/index.js';
import { mailboxNative } from '../src/native/mailbox.js';

const batches = Number(process.argv[2] ?? 1000);
const prefix = `mpbench_native_${process.pid}`;
const rt = await Runtime.start({ filePrefix: prefix });
try {
  const mailboxes = MailboxSystem.open();
  const box = mailboxes.open('native-loop', { capacity: 1 << 20 });
  const at = mailboxes.lookup('native-loop');
  if (!at) throw new Error('the mailbox has no registry entry');
  const native = mailboxNative();
  native.mbxSetHold(at.id, false); // drained messages stop counting against the capacity
  const bytes = new Uint8Array(64 * 64);
  const bounds = new Uint32Array(128);
  for (let i = 0; i < 64; i++) {
    bounds[2 * i] = i * 64;
    bounds[2 * i + 1] = i * 64 + 60;
  }
  let sent = 0;
  let drained = 0;
  for (let b = 0; b < batches; b++) {
    sent += native.mbxSendMany(at.slot, at.generation, at.id, 0, bytes, bounds, 64);
    drained += native.mbxDrain(0);
  }
  drained += native.mbxDrain(0);
  console.log(JSON.stringify({ messages: sent, drained }));
  box.close();
} finally {
  await rt.close();
  const group = new GroupFiles(prefix);
  if (!group.primaryAlive()) group.removeLeftovers(false);
}
