/*!
specter: passive API discovery.

The pipeline, one module per stage (see docs/architecture.md):
[`source`] reads capture files, [`decode`] finds TCP segments in frames, [`tcp`] puts each
direction of a connection back in order, [`app`] hands each connection to [`http1`] or
[`http2`], which turn byte streams into request/response [`exchange::Exchange`]s, and
[`pipeline`] ties them together and hands exchanges to a sink in the order their requests
began.
*/

pub mod analysis;
pub mod app;
pub mod decode;
pub mod diff;
pub mod exchange;
pub mod http1;
pub mod http2;
pub mod infer;
pub mod inputs;
pub mod output;
pub mod pipeline;
pub mod report;
pub mod sensor;
pub mod source;
pub mod spec;
pub mod stats;
pub mod store;
pub mod tcp;
pub mod tls;
