// Writes safetensors files the standard way: an 8-byte little-endian header
// length, the JSON header, then the tensors' bytes.
import { writeFileSync } from 'node:fs';

export interface TensorRecord {
  name: string;
  dtype: 'F32' | 'F16' | 'BF16' | 'I32';
  shape: number[];
  values: Float32Array;
}

function float32Bits(value: number): number {
  return new Uint32Array(new Float32Array([value]).buffer)[0]!;
}

/** f32 -> f16 bits for values exactly representable in f16 (the tests write only those). */
function halfBits(value: number): number {
  if (value === 0) return Object.is(value, -0) ? 0x8000 : 0;
  const bits = float32Bits(value);
  const sign = (bits >>> 16) & 0x8000;
  const exponent = ((bits >>> 23) & 0xff) - 127 + 15;
  const mantissa = bits & 0x7fffff;
  if (exponent <= 0) return sign | ((mantissa | 0x800000) >>> (14 - exponent));
  return sign | (exponent << 10) | (mantissa >>> 13);
}

export function encodeTensor(record: TensorRecord): Uint8Array {
  const n = record.values.length;
  if (record.dtype === 'F32') return new Uint8Array(record.values.slice().buffer);
  if (record.dtype === 'I32') return new Uint8Array(Int32Array.from(record.values, Math.round).buffer);
  const out = new Uint16Array(n);
  for (let i = 0; i < n; i++) out[i] = record.dtype === 'BF16' ? float32Bits(record.values[i]!) >>> 16 : halfBits(record.values[i]!);
  return new Uint8Array(out.buffer);
}

export function writeSafetensors(path: string, tensors: TensorRecord[]): void {
  const header: Record<string, unknown> = { __metadata__: { format: 'pt' } };
  const data: Uint8Array[] = [];
  let offset = 0;
  for (const t of tensors) {
    const bytes = encodeTensor(t);
    header[t.name] = { dtype: t.dtype, shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    data.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  json += ' '.repeat((8 - (json.length % 8)) % 8); // the format pads the header with spaces
  const length = Buffer.alloc(8);
  length.writeBigUInt64LE(BigInt(json.length));
  writeFileSync(path, Buffer.concat([length, Buffer.from(json), ...data]));
}
