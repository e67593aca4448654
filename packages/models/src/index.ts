export { CausalLM, type CausalLMBatch, type GenerateOptions, sampleToken } from './causal-lm.js';
export {
  type ActivationName,
  activation,
  applyRope,
  causalAttention,
  causalMask,
  crossEntropy,
  type RopeScaling,
  type RopeTables,
  repeatKV,
  ropeTables,
} from './functional.js';
export { GPT, GPTAttention, GPTBlock, GPTConfig, GPTMLP, GPTTransformer, type ResolvedGPTConfig } from './gpt.js';
export { type HFTensor, type HFTensors, loadHFStateDict, modelFromHFConfig } from './hf.js';
export type { HFConfigJSON } from './hf-config.js';
export {
  Llama,
  LlamaAttention,
  LlamaConfig,
  LlamaDecoderLayer,
  LlamaMLP,
  LlamaModel,
  type ResolvedLlamaConfig,
} from './llama.js';
export { ModuleList } from './module-list.js';
