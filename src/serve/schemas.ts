/**
 * JSON schemas of the sidecar's JSON routes. Types are strict (no
 * coercion: "5" is not a number) and unknown fields are refused, so a
 * misspelt field fails loudly instead of being ignored.
 */
import { HASH_STRING_SCHEMA } from './hashes.js';

/** Largest request id: the runtime keeps ids from 2^52 up for its own holds. */
export const MAX_REQUEST_ID = 2 ** 52 - 1;
export const MAX_HASHES = 1 << 20;

const name = { type: 'string', minLength: 1, maxLength: 256 } as const;
const time = { type: 'number', minimum: 0 } as const;
const requestId = { type: 'integer', minimum: 0, maximum: MAX_REQUEST_ID } as const;
const agent = {
  type: 'object',
  required: ['workload', 'agent'],
  additionalProperties: false,
  properties: { workload: name, agent: name },
} as const;
const hashes = { type: 'array', maxItems: MAX_HASHES, items: HASH_STRING_SCHEMA } as const;

/** Human words for the patterns, used by error messages instead of the regular expression. */
export const PATTERN_WORDS: Readonly<Record<string, string>> = {
  [HASH_STRING_SCHEMA.pattern]: 'must be a 64-bit hash: a decimal string, or 0x and up to 16 hex digits',
  '^[0-9]{1,10}$': 'must be a block id (a non-negative integer)',
};

const onlyFor = (types: readonly string[], required: readonly string[], forbidden: readonly string[]) => ({
  if: { required: ['type'], properties: { type: { enum: types } } },
  then: { required, properties: Object.fromEntries(forbidden.map((f) => [f, false])) },
});

export const frameworkEventSchema = {
  type: 'object',
  required: ['type', 'time', 'session'],
  additionalProperties: false,
  properties: {
    type: { enum: ['session.start', 'step.start', 'step.end', 'tool.start', 'tool.end', 'session.end'] },
    time,
    session: name,
    workload: name,
    agent,
    tool: name,
  },
  allOf: [
    onlyFor(['session.start'], ['workload'], ['agent', 'tool']),
    onlyFor(['step.start', 'step.end'], ['agent'], ['workload', 'tool']),
    onlyFor(['tool.start', 'tool.end'], ['agent', 'tool'], ['workload']),
    onlyFor(['session.end'], [], ['workload', 'agent', 'tool']),
  ],
} as const;

export const admitSchema = {
  type: 'object',
  required: ['requestId', 'hashes', 'numTokens'],
  additionalProperties: false,
  properties: {
    requestId,
    hashes,
    numTokens: { type: 'integer', minimum: 1, maximum: 0x7fffffff },
    session: name,
    agent,
    time,
  },
} as const;

export const requestTimeSchema = {
  type: 'object',
  required: ['requestId'],
  additionalProperties: false,
  properties: { requestId, time },
} as const;

export const decodeSchema = {
  type: 'object',
  required: ['requestId', 'tokens'],
  additionalProperties: false,
  properties: { requestId, tokens: { type: 'integer', minimum: 0, maximum: 0x7fffffff }, hashes, time },
} as const;

export const actSchema = {
  type: 'object',
  additionalProperties: false,
  properties: { now: time },
} as const;

export const predictSchema = {
  type: 'object',
  required: ['session'],
  additionalProperties: false,
  properties: { session: name, horizon: { type: 'integer', minimum: 1, maximum: 256 } },
} as const;

export const explainParamsSchema = {
  type: 'object',
  required: ['blockId'],
  properties: { blockId: { type: 'string', pattern: '^[0-9]{1,10}$' } },
} as const;
