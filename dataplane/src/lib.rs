//! Fast path.
