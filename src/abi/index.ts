/** The FUSE kernel ABI, protocol 7.45: structs, opcodes, flags, codecs. No I/O. */
export * from './consts.js';
export * from './errno.js';
export * from './struct.js';
export * as structs from './structs.js';
export * from './request.js';
export * from './dirent.js';
export * from './version.js';
export * from './names.js';
