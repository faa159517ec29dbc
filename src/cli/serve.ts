/** Serving for the CLI: see serveUntilUnmounted (src/api/daemon.ts). */
export { serveUntilUnmounted as serveForeground } from '../api/daemon.js';
