export {
  encodeSafetensors,
  halfToFloat,
  readSafetensors,
  readSafetensorsFile,
  type SafetensorsArrayTypes,
  type SafetensorsContents,
  type SafetensorsData,
  type SafetensorsDtype,
  type SafetensorsTensor,
  safetensorToFloat32,
  writeSafetensors,
} from './safetensors.js';
