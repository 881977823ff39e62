/**
 * The reference engine: a Llama-architecture decoder whose attention runs
 * on cachesage's paged KV blocks (the CPU data plane's device pool), and
 * the serving loop that drives it through the runtime.
 */
export { checkModelConfig, headDim, kvBytesPerBlock, kvOffset, loadModelConfig, modelConfigFromJson, MODEL_PRESETS, type ModelConfig } from './config.js';
export { Engine, type EngineChunk, type EngineOptions } from './engine.js';
export { llamaTensorShapes, referenceDecodeAttention, referenceForward, type NamedWeights } from './reference.js';
export { serveTrace, type ServeOptions, type ServeResult } from './server.js';
export { TraceTokens } from './tokens.js';
