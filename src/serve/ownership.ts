/**
 * Which workload owns each session and each live request, so a token scoped
 * to some workloads can be refused the others' sessions, requests and
 * blocks. Names arrive as fresh strings with every request; they are
 * interned here so the maps and the runtime keep one copy of each.
 */
import type { Access } from './access.js';
import { forbidden, HttpError, notFound } from './errors.js';

/** Names interned before the table starts over (bounded memory under any input). */
const MAX_INTERNED = 1 << 17;

export class Ownership {
  /** Session name -> workload of its latest start. */
  readonly #sessions = new Map<string, string>();
  /** Live request id -> workload (null: untagged). */
  readonly #requests = new Map<number, string | null>();
  readonly #names = new Map<string, string>();

  intern(name: string): string {
    const known = this.#names.get(name);
    if (known !== undefined) return known;
    if (this.#names.size >= MAX_INTERNED) this.#names.clear();
    this.#names.set(name, name);
    return name;
  }

  get liveRequests(): number {
    return this.#requests.size;
  }

  sessionWorkload(session: string): string | undefined {
    return this.#sessions.get(session);
  }

  /** @throws HttpError 403 when the session belongs to a workload `access` may not use. */
  checkSession(access: Access, session: string, what: string): void {
    if (access.all) return;
    const owner = this.#sessions.get(session);
    if (owner !== undefined && !access.workloads.has(owner)) {
      throw forbidden(`${what}: session ${JSON.stringify(session)} belongs to a workload this token may not use`);
    }
  }

  /** @throws HttpError 403 naming `field` when `access` may not use `workload`. */
  checkWorkload(access: Access, workload: string, field: string): void {
    if (!access.all && !access.workloads.has(workload)) {
      throw forbidden(`${field}: this token may not use workload ${JSON.stringify(workload)}`);
    }
  }

  /** A session (re)started under `workload`. */
  sessionStarted(session: string, workload: string): void {
    if (this.#sessions.get(session) !== workload) this.#sessions.set(session, workload);
  }

  /**
   * The workload of a live request `access` may use.
   *
   * @throws HttpError 404 when the request is not live, 403 when it is another workload's.
   */
  request(access: Access, requestId: number, op: string): string | null {
    const owner = this.#requests.get(requestId);
    if (owner === undefined) throw notFound(`${op}: unknown request ${requestId} (never admitted or already released)`);
    if (!access.all && (owner === null || !access.workloads.has(owner))) {
      throw forbidden(`${op}: request ${requestId} belongs to ${owner === null ? 'no workload (untagged)' : 'a workload this token may not use'}`);
    }
    return owner;
  }

  /** @throws HttpError 409 when the request id is live. */
  checkNewRequest(requestId: number, op: string): void {
    if (this.#requests.has(requestId)) throw new HttpError(409, `${op}: request ${requestId} is already admitted`);
  }

  admitted(requestId: number, workload: string | null): void {
    this.#requests.set(requestId, workload);
  }

  released(requestId: number): void {
    this.#requests.delete(requestId);
  }
}
