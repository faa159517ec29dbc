/**
 * The per-request context every handler receives.
 */

/** Who asked, and whether they still want the answer. */
export interface Context {
  /** The caller's filesystem uid (fsuid), as the kernel reports it. */
  readonly uid: number;
  /** The caller's filesystem gid (fsgid). */
  readonly gid: number;
  /** The calling thread's id (0 when the kernel itself asks, e.g. writeback). */
  readonly pid: number;
  /** The caller's umask for MKNOD/MKDIR/CREATE/TMPFILE (already applied to `mode` by the
   * kernel unless FUSE_DONT_MASK was negotiated); 0 for other requests. */
  readonly umask: number;
  /** Supplementary groups the kernel sent with the request (FUSE_CREATE_SUPP_GROUP: on
   * creations, the parent directory's group when the caller has it as a supplementary
   * group); undefined for most requests. All of the caller's groups: `callerGroups(ctx)`. */
  readonly suppGroups?: readonly number[];
  /** Aborted when the kernel sends FUSE_INTERRUPT for this request (the caller got a
   * signal). A handler that stops early should throw/return EINTR. Created on first use. */
  readonly signal: AbortSignal;
}

/** The Context the Server builds for each request; `interrupt()` is how INTERRUPT reaches it. */
export class RequestContext implements Context {
  private controller: AbortController | undefined;
  private interrupted = false;
  private reason: Error | undefined;

  constructor(
    readonly uid: number,
    readonly gid: number,
    readonly pid: number,
    readonly umask: number,
    readonly suppGroups?: readonly number[],
  ) {}

  get signal(): AbortSignal {
    if (!this.controller) {
      this.controller = new AbortController();
      if (this.interrupted) this.controller.abort(this.reason ?? interruptReason());
    }
    return this.controller.signal;
  }

  /** FUSE_INTERRUPT arrived for this request, or (with `reason`) the server gave up on it. */
  interrupt(reason?: Error): void {
    if (this.interrupted) return;
    this.interrupted = true;
    this.reason = reason;
    this.controller?.abort(reason ?? interruptReason());
  }

  /** Whether INTERRUPT arrived for this request, or the server gave up on it (handler_timeout),
   * without creating `signal`. */
  get isInterrupted(): boolean {
    return this.interrupted;
  }
}

function interruptReason(): Error {
  const e = new Error('EINTR: interrupted by the kernel (FUSE_INTERRUPT)');
  (e as NodeJS.ErrnoException).code = 'EINTR';
  return e;
}
