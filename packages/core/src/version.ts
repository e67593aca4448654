/** The version of @zeroflow/core, checked against each plugin's `coreVersion` range. */
export const CORE_VERSION = '0.1.0';
