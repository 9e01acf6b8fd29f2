//! portwhy-harness: engine images, environments and fault injectors.
