/** The low-level API: Server dispatch, the FileSystem interface, mount(). */
export * from './types.js';
export * from './context.js';
export * from './callers.js';
export * from './errors.js';
export * from './filesystem.js';
export * from './server.js';
export * from './session.js';
export * from './inode.js';
export * from './inode-tree.js';
export { OPCODES, opcodeRow, opcodeName, wantedInitFlags, type OpRow } from './ops.js';
export { attrOut, entryOut, msToTimespec, timespecToMs } from './convert.js';
export * from './daemon.js';
export * from './journal.js';
export * from './ledger.js';
export * from './supervisor.js';
