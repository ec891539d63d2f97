//! JSON schema inference (filled in by the schema work).
