//! Shared helpers for multi-process cluster tests.
