/**
 * tsfuse: a pure-protocol FUSE server framework for TypeScript (no libfuse).
 *
 * import { mount, FuseError, FuseInode, Passthrough, Vfs } from 'tsfuse';
 */
export * from './api/index.js';
export * from './vfs/index.js';
export * from './passthrough/index.js';
export {
  Connection, ConnectionError, unmount, parseOptionString, resolveMountOptions, OptionError, MountError,
  type MountOptions, type UnmountOptions, type Negotiated, type KernelOffer, type AtimeMode, type Notifier,
} from './transport/index.js';
export { InitFlag, Opcode, FATTR, FOPEN, initFlagNames, nameToBytes, nameFromBytes, isEscapedName } from './abi/index.js';
