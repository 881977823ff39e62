/**
 * Who may do what: bearer tokens read from a token file, each allowed every
 * workload ("*") or a list of them. Tokens are looked up by their SHA-256,
 * so the comparison never leaks how much of a wrong token matched.
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';

import { isRecord } from '../util/check.js';

/** Shortest token the sidecar accepts: anything shorter is guessable. */
export const MIN_TOKEN_LENGTH = 16;
const MAX_NAME_LENGTH = 256;

/** What one bearer token may touch. */
export interface Access {
  /** A label for logs and rate limiting: the token file's `name`, or `token #i`. */
  readonly name: string;
  /** Every workload, and the verbs that touch all of them (act, metrics). */
  readonly all: boolean;
  readonly workloads: ReadonlySet<string>;
}

/** The access of a sidecar without tokens: loopback only, everything allowed. */
export const OPEN_ACCESS: Access = Object.freeze({ name: 'open', all: true, workloads: new Set<string>() });

export class TokenFileError extends Error {
  override readonly name = 'TokenFileError';
}

export function mayUseWorkload(access: Access, workload: string): boolean {
  return access.all || access.workloads.has(workload);
}

function digest(token: string): string {
  return createHash('sha256').update(token, 'utf8').digest('hex');
}

/** Token file entries by the SHA-256 of their token. */
export class TokenTable {
  readonly #byDigest: Map<string, Access>;

  constructor(entries: readonly { token: string; access: Access }[]) {
    this.#byDigest = new Map(entries.map((e) => [digest(e.token), e.access]));
  }

  get size(): number {
    return this.#byDigest.size;
  }

  /** The access of an `Authorization` header's bearer token; null when absent or unknown. */
  lookup(header: string | undefined): Access | null {
    if (header === undefined || !/^Bearer /i.test(header)) return null;
    const token = header.slice(7).trim();
    if (token.length === 0 || token.length > 4096) return null;
    return this.#byDigest.get(digest(token)) ?? null;
  }
}

/**
 * Parses a token file: a JSON array of `{token, workloads, name?}` where
 * `workloads` is "*" or a non-empty array of workload names.
 *
 * @throws TokenFileError naming the file and the entry.
 */
export function parseTokenFile(path: string, text: string): TokenTable {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (error) {
    throw new TokenFileError(`${path}: not valid JSON (${(error as Error).message})`);
  }
  if (!Array.isArray(data)) throw new TokenFileError(`${path}: must be a JSON array of {token, workloads} objects`);
  const seen = new Set<string>();
  const entries = data.map((entry: unknown, i) => {
    const where = `${path}: entry ${i}`;
    if (!isRecord(entry)) throw new TokenFileError(`${where} must be an object {token, workloads}`);
    for (const key of Object.keys(entry)) {
      if (key !== 'token' && key !== 'workloads' && key !== 'name') throw new TokenFileError(`${where}: unknown field "${key}" (known: token, workloads, name)`);
    }
    const { token, workloads, name } = entry;
    if (typeof token !== 'string' || token.length < MIN_TOKEN_LENGTH || token.length > 4096 || /\s/.test(token)) {
      throw new TokenFileError(`${where}: token must be a string of ${MIN_TOKEN_LENGTH} to 4096 characters without spaces`);
    }
    if (seen.has(token)) throw new TokenFileError(`${where}: token is listed twice`);
    seen.add(token);
    if (name !== undefined && (typeof name !== 'string' || name.length === 0 || name.length > MAX_NAME_LENGTH)) {
      throw new TokenFileError(`${where}: name must be a string of 1 to ${MAX_NAME_LENGTH} characters`);
    }
    const label = typeof name === 'string' ? name : `token #${i}`;
    if (workloads === '*') return { token, access: { name: label, all: true, workloads: new Set<string>() } };
    if (!Array.isArray(workloads) || workloads.length === 0) throw new TokenFileError(`${where}: workloads must be "*" or a non-empty array of workload names`);
    for (const w of workloads) {
      if (typeof w !== 'string' || w.length === 0 || w.length > MAX_NAME_LENGTH) {
        throw new TokenFileError(`${where}: workloads must hold names of 1 to ${MAX_NAME_LENGTH} characters, got ${JSON.stringify(w)}`);
      }
    }
    return { token, access: { name: label, all: false, workloads: new Set(workloads as string[]) } };
  });
  if (entries.length === 0) throw new TokenFileError(`${path}: holds no tokens`);
  return new TokenTable(entries);
}

/** Reads and parses a token file. @throws TokenFileError naming the file. */
export function readTokenFile(path: string): TokenTable {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (error) {
    throw new TokenFileError(`${path}: cannot read the token file (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`);
  }
  return parseTokenFile(path, text);
}
