/** The passthrough filesystem (mirrors a source directory). */
export * from './passthrough.js';
