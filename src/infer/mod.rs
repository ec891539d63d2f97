/*!
Inference: from exchanges to what an API is. Path templates, parameters, JSON schemas,
authentication schemes and sensitive data, each learnt from traffic and kept as
mergeable, order-independent summaries (see docs/inventory.md).
*/

pub mod auth;
pub mod pii;
pub mod segment;
pub mod sketch;
pub mod template;
pub mod schema;
