/** decodeEventBatch: both wire forms, hash normalisation, and refusals that name the field. */
import { encode } from '@msgpack/msgpack';
import { describe, expect, it } from 'vitest';

import { blockHashKey, decodeEventBatch, decodeSequence, encodeSequence, KvEventFormatError } from '../../src/kvevents/events.js';

const pack = (value: unknown) => encode(value, { useBigInt64: true });

describe('blockHashKey', () => {
  it('takes ints modulo 2^64 and bytes as the big-endian value of their last 8 bytes', () => {
    expect(blockHashKey(5, 'h')).toBe(5n);
    expect(blockHashKey(-1, 'h')).toBe(2n ** 64n - 1n);
    expect(blockHashKey(-(2n ** 63n), 'h')).toBe(2n ** 63n);
    expect(blockHashKey(2n ** 64n - 2n, 'h')).toBe(2n ** 64n - 2n);
    const digest = Uint8Array.from({ length: 32 }, (_, i) => i);
    expect(blockHashKey(digest, 'h')).toBe(0x18191a1b1c1d1e1fn);
    expect(blockHashKey(Uint8Array.of(1, 2), 'h')).toBe(0x0102n);
  });

  it('refuses what is not a 64-bit hash', () => {
    expect(() => blockHashKey(2n ** 64n, 'x.h')).toThrow(/x\.h: .* does not fit in 64 bits/);
    expect(() => blockHashKey(1.5, 'x.h')).toThrow(/x\.h: 1\.5 is not an integer/);
    expect(() => blockHashKey(new Uint8Array(0), 'x.h')).toThrow(/empty bytes hash/);
    expect(() => blockHashKey('ab', 'x.h')).toThrow(KvEventFormatError);
  });
});

describe('decodeEventBatch', () => {
  it('reads tagged arrays with and without the trailing medium, and tagged maps', () => {
    const batch = decodeEventBatch(
      pack([
        1.5,
        [
          ['BlockStored', [1, -2], null, [1, 2, 3, 4], 2, null],
          ['BlockStored', [3], 2, [5, 6], 2, 7, 'CPU', 'lora-x', null, 0],
          { type: 'BlockRemoved', block_hashes: [Uint8Array.of(9)], medium: null },
          ['AllBlocksCleared'],
        ],
        3,
      ]),
    );
    expect(batch.timestamp).toBe(1.5);
    expect(batch.dataParallelRank).toBe(3);
    expect(batch.events).toEqual([
      { type: 'BlockStored', blockHashes: [1n, 2n ** 64n - 2n], parentBlockHash: null, tokenIds: [1, 2, 3, 4], blockSize: 2, loraId: null, medium: 'GPU' },
      { type: 'BlockStored', blockHashes: [3n], parentBlockHash: 2n, tokenIds: [5, 6], blockSize: 2, loraId: 7, medium: 'CPU' },
      { type: 'BlockRemoved', blockHashes: [9n], medium: 'GPU' },
      { type: 'AllBlocksCleared' },
    ]);
  });

  it('reads a map batch without a rank', () => {
    const batch = decodeEventBatch(pack({ ts: 2, events: [{ type: 'AllBlocksCleared' }] }));
    expect(batch).toEqual({ timestamp: 2, events: [{ type: 'AllBlocksCleared' }], dataParallelRank: null });
  });

  it.each([
    [Uint8Array.of(0xc1), /payload is not msgpack/],
    [pack('hello'), /batch must be \[ts, events, dp_rank\?\]/],
    [pack(['x', []]), /batch\.ts must be a finite number/],
    [pack([1, {}]), /batch\.events must be an array/],
    [pack([1, [['BlockMoved', []]]]), /batch\.events\[0\]: unknown event type the string "BlockMoved"/],
    [pack([1, [['BlockStored', [1], null]]]), /batch\.events\[0\]: BlockStored has 2 fields, needs at least 5/],
    [pack([1, [['BlockStored', [1], null, [1], 0, null]]]), /batch\.events\[0\]\.block_size must be an integer >= 1/],
    [pack([1, [{ type: 'BlockRemoved', block_hashes: [true] }]]), /batch\.events\[0\]\.block_hashes\[0\]: a block hash must be/],
    [pack([1, [{ type: 'BlockRemoved', block_hashes: [1], medium: 3 }]]), /batch\.events\[0\]\.medium must be a non-empty string/],
    [pack([1, [['BlockStored', [1], null, [-1], 1, null]]]), /token_ids\[0\] must be an integer >= 0/],
    [pack([1, [], -1]), /batch\.data_parallel_rank must be an integer >= 0/],
  ])('refuses a malformed payload, naming the field (%#)', (payload, message) => {
    expect(() => decodeEventBatch(payload)).toThrow(KvEventFormatError);
    expect(() => decodeEventBatch(payload)).toThrow(message);
  });
});

describe('sequence frames', () => {
  it('round-trips 8-byte big-endian numbers and reads the -1 end marker', () => {
    expect([...encodeSequence(258)]).toEqual([0, 0, 0, 0, 0, 0, 1, 2]);
    expect(decodeSequence(encodeSequence(2 ** 40), 's')).toBe(2 ** 40);
    expect(decodeSequence(new Uint8Array(8).fill(0xff), 's')).toBe(-1);
    expect(() => decodeSequence(new Uint8Array(4), 's')).toThrow(/s: sequence frame has 4 bytes, expected 8/);
  });
});
