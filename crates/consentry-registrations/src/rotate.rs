//! Rotating one registration's credential.
