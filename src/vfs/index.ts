/** Several filesystems under one mount: the Vfs and its control socket. */
export * from './vfs.js';
export { MUST_MATCH } from './flags.js';
export * from './control.js';
