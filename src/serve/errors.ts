/**
 * Every refusal the sidecar gives is an HttpError: a 4xx status and one
 * message naming the field that is wrong. Schema errors from fastify's
 * validator, body-parser errors and the runtime's TypeError/RangeError are
 * all reshaped into it; only a bug becomes a 500.
 */
import { SnapshotError } from '../runtime/snapshot.js';
import { PATTERN_WORDS } from './schemas.js';

export class HttpError extends Error {
  override readonly name = 'HttpError';
  constructor(
    readonly statusCode: number,
    message: string,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const badRequest = (message: string) => new HttpError(400, message);
export const forbidden = (message: string) => new HttpError(403, message);
export const notFound = (message: string) => new HttpError(404, message);

/** The parts of an ajv error the messages use. */
interface SchemaError {
  instancePath: string;
  keyword: string;
  params: Record<string, unknown>;
  message?: string;
}

/** `/agent/workload` under `body` -> `body.agent.workload`; `/hashes/3` -> `body.hashes[3]`. */
export function fieldName(context: string, instancePath: string): string {
  let name = context;
  for (const part of instancePath.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    name += /^\d+$/.test(key) ? `[${key}]` : `.${key}`;
  }
  return name;
}

/** One schema error as a sentence naming its field. */
export function schemaMessage(context: string, error: SchemaError): string {
  const field = fieldName(context, error.instancePath);
  const p = error.params;
  switch (error.keyword) {
    case 'required':
      return `${fieldName(context, `${error.instancePath}/${String(p['missingProperty'])}`)} is required`;
    case 'additionalProperties':
      return `${fieldName(context, `${error.instancePath}/${String(p['additionalProperty'])}`)} is not a known field`;
    case 'false schema':
      return `${field} is not allowed here`;
    case 'type':
      return `${field} must be ${String(p['type']).replace(/,/g, ' or ')}`;
    case 'enum':
      return `${field} must be one of ${(p['allowedValues'] as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'pattern':
      return `${field} ${PATTERN_WORDS[String(p['pattern'])] ?? `must match ${String(p['pattern'])}`}`;
    case 'const':
      return `${field} must be ${JSON.stringify(p['allowedValue'])}`;
    default:
      return `${field} ${error.message ?? 'is invalid'}`;
  }
}

/** fastify's error codes for bodies it could not take, with the status each deserves. */
const BODY_ERRORS: Readonly<Record<string, number>> = {
  FST_ERR_CTP_BODY_TOO_LARGE: 413,
  FST_ERR_CTP_INVALID_MEDIA_TYPE: 415,
  FST_ERR_CTP_EMPTY_JSON_BODY: 400,
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: 400,
  FST_ERR_CTP_INVALID_JSON_BODY: 400,
  FST_ERR_CTP_EMPTY_TYPE: 415,
  FST_ERR_CTP_INVALID_TYPE: 415,
  FST_ERR_CTP_INVALID_CHARSET: 415,
};

/** Status and message for anything a handler threw. */
export function describeError(error: unknown, bodyLimit: number): { statusCode: number; message: string; headers?: Record<string, string> } {
  if (error instanceof HttpError) return { statusCode: error.statusCode, message: error.message, headers: error.headers };
  const e = error as { code?: string; statusCode?: number; validation?: SchemaError[]; validationContext?: string; message?: string };
  if (Array.isArray(e.validation) && e.validation.length > 0) {
    return { statusCode: 400, message: schemaMessage(e.validationContext ?? 'body', e.validation[0]!) };
  }
  if (e.code === 'FST_ERR_CTP_BODY_TOO_LARGE') return { statusCode: 413, message: `body is larger than the limit of ${bodyLimit} bytes` };
  if (e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE') return { statusCode: 415, message: 'body: unsupported content type (send application/json, or application/msgpack to /v1/batch)' };
  if (e.code !== undefined && Object.hasOwn(BODY_ERRORS, e.code)) return { statusCode: BODY_ERRORS[e.code]!, message: `body: ${e.message ?? 'malformed'}` };
  // JSON.parse failures surface as a SyntaxError with statusCode 400.
  if (error instanceof SyntaxError) return { statusCode: 400, message: `body is not valid JSON: ${error.message}` };
  if (error instanceof SnapshotError) return { statusCode: 500, message: error.message };
  if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) return { statusCode: e.statusCode, message: e.message ?? 'bad request' };
  return { statusCode: 500, message: `internal error: ${e.message ?? String(error)}` };
}
