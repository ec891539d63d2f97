//! Sensitive data detectors (filled in by the PII work).
