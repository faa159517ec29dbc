/** Transport: mount/unmount, /dev/fuse channels, INIT, reply writing. */
export * from './options.js';
export * from './mount.js';
export * from './holders.js';
export * from './connection.js';
export { native } from './native.js';
export * from './notify.js';
