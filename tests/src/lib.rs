//! Integration tests live under `it/`; this library is empty.
