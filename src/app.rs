/*!
The application layer of a TCP connection: which protocol parser owns it.

Every connection starts with the HTTP/1 parser, which also recognises HTTP/2 by its bytes
(the prior-knowledge preface, a server's SETTINGS frame, frames on a connection joined
midstream, or an accepted `Upgrade: h2c`) on any port, and hands the connection over with
whatever bytes it had buffered.
*/

use crate::http1::{self, Ctx};
use crate::http2;
use crate::source::Timestamp;
use crate::tcp::{FlowEvent, FlowInfo, Side, StreamApp};
use crate::tls;

/// The parser that owns a connection.
#[derive(Debug)]
pub enum Connection {
    Http1(Box<http1::Connection>),
    Http2(Box<http2::Connection>),
    Tls(Box<tls::Connection>),
}

impl Default for Connection {
    fn default() -> Self {
        Connection::Http1(Box::default())
    }
}

impl Connection {
    /// Feeds data, switching parsers when the HTTP/1 parser hands over.
    fn data(&mut self, info: &FlowInfo, side: Side, ts: Timestamp, bytes: &[u8], ctx: &mut Ctx) {
        match self {
            Connection::Http2(h2) => h2.data(info, side, ts, bytes, ctx),
            Connection::Tls(t) => t.data(info, side, ts, bytes, ctx),
            Connection::Http1(h1) => {
                let used = h1.data(info, side, ts, bytes, ctx);
                let Some(switch) = h1.take_switch() else {
                    return;
                };
                if switch.tls {
                    let mut t = tls::Connection::new(info, switch.client, ts, ctx);
                    for s in [Side::A, Side::B] {
                        let held = &switch.buffered[s as usize];
                        if !held.is_empty() {
                            t.data(info, s, ts, held, ctx);
                        }
                    }
                    t.data(info, side, ts, &bytes[used..], ctx);
                    *self = Connection::Tls(Box::new(t));
                    return;
                }
                ctx.stats.h2_connections += 1;
                let order = switch.upgraded.as_ref().map(|_| ctx.begin(info));
                let mut h2 =
                    http2::Connection::new(switch.client, switch.midstream, switch.upgraded, order);
                for s in [Side::A, Side::B] {
                    let held = &switch.buffered[s as usize];
                    if !held.is_empty() {
                        h2.data(info, s, ts, held, ctx);
                    }
                }
                h2.data(info, side, ts, &bytes[used..], ctx);
                *self = Connection::Http2(Box::new(h2));
            }
        }
    }
}

impl StreamApp for Connection {
    type Ctx = Ctx;

    fn on_event(&mut self, info: &FlowInfo, event: FlowEvent<'_>, ctx: &mut Ctx) {
        match (self, event) {
            (this, FlowEvent::Data { side, ts, bytes }) => this.data(info, side, ts, bytes, ctx),
            (Connection::Http1(h1), event) => h1.on_event(info, event, ctx),
            (Connection::Http2(h2), event) => h2.on_event(info, event, ctx),
            (Connection::Tls(t), event) => t.on_event(info, event, ctx),
        }
    }
}
