//! Storage adapter (in progress).
