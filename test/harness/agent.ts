/**
 * A test agent: a real Node process that a test drives over the IPC channel of `fork`. It can
 * start a Runtime and run functions of fixture modules inside this process, so tests exercise
 * real DPDK processes. Protocol (parent -> agent): { id, op: 'start' | 'call' | 'close' | 'exit', ... };
 * replies { id, ok, value | error }; unsolicited { event, data } from fixtures via ctx.emit.
 */
import { Runtime, type RuntimeOptions } from '../../src/index.js';

/** What a fixture function receives as its first argument. */
export interface AgentContext {
  rt: Runtime | undefined;
  /** Per-agent storage fixtures share between calls (subscriptions, handles...). */
  state: Map<string, unknown>;
  emit(event: string, data?: unknown): void;
}

interface Command {
  id: number;
  op: 'start' | 'call' | 'close' | 'exit';
  options?: RuntimeOptions;
  module?: string;
  fn?: string;
  args?: unknown[];
}

const ctx: AgentContext = {
  rt: undefined,
  state: new Map(),
  emit(event, data) {
    process.send?.({ event, data });
  },
};

function serializeError(err: unknown): Record<string, unknown> {
  if (err instanceof Error) {
    return { name: err.name, message: err.message, code: (err as { code?: unknown }).code, stack: err.stack };
  }
  return { message: String(err) };
}

async function run(cmd: Command): Promise<unknown> {
  switch (cmd.op) {
    case 'start': {
      ctx.rt = await Runtime.start({ handleSignals: true, ...cmd.options });
      return { processType: ctx.rt.processType, lcoreId: ctx.rt.lcoreId, pid: process.pid, filePrefix: ctx.rt.filePrefix };
    }
    case 'call': {
      const mod = (await import(cmd.module!)) as Record<string, (c: AgentContext, ...a: unknown[]) => unknown>;
      const fn = mod[cmd.fn!];
      if (typeof fn !== 'function') throw new Error(`fixture ${cmd.module} has no function ${cmd.fn}`);
      return await fn(ctx, ...(cmd.args ?? []));
    }
    case 'close':
      await ctx.rt?.close();
      return true;
    case 'exit':
      setImmediate(() => process.exit(0));
      return true;
  }
}

process.on('message', (msg: Command) => {
  run(msg).then(
    (value) => process.send?.({ id: msg.id, ok: true, value }),
    (err: unknown) => process.send?.({ id: msg.id, ok: false, error: serializeError(err) }),
  );
});
// The test process went away: leave the group cleanly rather than linger.
process.on('disconnect', () => {
  void (ctx.rt?.close() ?? Promise.resolve()).finally(() => process.exit(0));
});
process.send?.({ event: 'ready', data: { pid: process.pid } });
