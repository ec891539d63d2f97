//! What specter says about protocols beyond plain HTTP/1, on real captures: HTTP/2 found
//! by its bytes on any port, h2c upgrades, server push, gRPC trailers, and TLS connections
//! it cannot look into.

use crate::util::*;

fn find<'a>(lines: &'a [serde_json::Value], key: &str, value: &str) -> Vec<&'a serde_json::Value> {
    lines.iter().filter(|l| l[key] == value).collect()
}

#[test]
fn http2_is_found_by_its_bytes_on_unusual_ports() {
    let Some(dir) = shared_captures() else { return };
    // tshark needs `-d tcp.port==50051,http2` for these; specter needs nothing.
    let lines = exchanges(&dir.join("api/grpc-unary.pcapng"));
    let h2 = find(&lines, "proto", "h2");
    assert_eq!(h2.len(), 1);
    assert_eq!(h2[0]["target"], "/greet.GreetService/Greet");
    assert_eq!(h2[0]["req_content_type"], "application/grpc");
    assert_eq!(h2[0]["stream"], 1);
    let lines = exchanges(&dir.join("http2/h2c-prior-knowledge.pcap"));
    assert_eq!(find(&lines, "proto", "h2").len(), 6);
}

#[test]
fn h2c_upgrade_gives_the_101_and_the_real_answer_on_stream_1() {
    let Some(dir) = shared_captures() else { return };
    let lines = exchanges(&dir.join("http2/h2c-upgrade-deflate.pcap"));
    let h1 = find(&lines, "proto", "h1");
    let h2 = find(&lines, "proto", "h2");
    assert_eq!((h1.len(), h2.len()), (1, 1));
    assert_eq!(h1[0]["status"], 101);
    assert_eq!(h2[0]["status"], 200);
    assert_eq!(h2[0]["stream"], 1);
    assert_eq!(h2[0]["target"], h1[0]["target"]);
    assert!(h2[0]["notes"]
        .as_array()
        .expect("notes")
        .contains(&"upgrade_h2c".into()));
}

#[test]
fn server_push_is_an_exchange_of_its_own() {
    let Some(dir) = shared_captures() else { return };
    let lines = exchanges(&dir.join("http2/nghttp2-null-linktype.pcap"));
    let pushed: Vec<_> = lines
        .iter()
        .filter(|l| {
            l["notes"]
                .as_array()
                .is_some_and(|n| n.contains(&"server_push".into()))
        })
        .collect();
    assert_eq!(pushed.len(), 1);
    assert_eq!(pushed[0]["target"], "/stylesheets/screen.css");
    assert_eq!(pushed[0]["stream"], 2);
}

#[test]
fn tls_connections_are_reported_with_what_the_handshake_shows() {
    let Some(dir) = shared_captures() else { return };
    let lines = exchanges(&dir.join("tls/alpn-h2.pcap"));
    let tls = find(&lines, "proto", "tls");
    assert_eq!(tls.len(), 1);
    let t = &tls[0]["tls"];
    assert_eq!(tls[0]["host"], "www.cloudflare.com");
    assert_eq!(tls[0]["method"], serde_json::Value::Null);
    assert_eq!(t["sni"], "www.cloudflare.com");
    assert_eq!(t["alpn_offered"], serde_json::json!(["h2", "http/1.1"]));
    assert_eq!(t["alpn"], "h2");
    assert_eq!(t["version"], "1.2");
    assert!(t["cert_sans"]
        .as_array()
        .expect("sans")
        .contains(&"www.cloudflare.com".into()));
    assert!(t["ja4"].as_str().expect("ja4").starts_with("t12d"));
    // TLS 1.3 with ECH: only the outer SNI, and the certificate is encrypted.
    let lines = exchanges(&dir.join("tls/tls13-ech.pcap"));
    let tls = find(&lines, "proto", "tls");
    assert!(!tls.is_empty());
    for l in tls {
        assert_eq!(l["tls"]["version"], "1.3");
        assert_eq!(l["tls"]["cert_subject"], serde_json::Value::Null);
    }
}

#[test]
fn many_tls_sites_in_one_capture() {
    let Some(dir) = shared_captures() else { return };
    let lines = exchanges(&dir.join("formats/pcapng-22-interfaces.pcapng"));
    let snis: std::collections::BTreeSet<&str> = find(&lines, "proto", "tls")
        .iter()
        .filter_map(|l| l["tls"]["sni"].as_str())
        .collect();
    // The MANIFEST lists 59 distinct SNIs over TLS and QUIC; QUIC (UDP) is not TCP.
    assert!(snis.len() > 30, "{} SNIs: {snis:?}", snis.len());
    assert!(snis.contains("www.gitlab.com") || snis.contains("www.linkedin.com"));
}

#[test]
fn grpc_calls_carry_service_method_status_and_message_counts() {
    // captures/grpc.pcap: a real grpcio server and client (captures/grpc_shop.py).
    let lines = exchanges(&root().join("captures/grpc.pcap"));
    let calls: Vec<(String, String, u64, u64, u64)> = lines
        .iter()
        .filter_map(|l| {
            let g = &l["grpc"];
            Some((
                g["service"].as_str()?.to_string(),
                g["method"].as_str()?.to_string(),
                g["status"].as_u64()?,
                g["request_messages"].as_u64()?,
                g["response_messages"].as_u64()?,
            ))
        })
        .collect();
    let c = |m: &str, st: u64, rq: u64, rs: u64| {
        ("shop.v1.Catalog".to_string(), m.to_string(), st, rq, rs)
    };
    assert_eq!(
        calls,
        vec![
            c("GetProduct", 0, 1, 1),
            c("GetProduct", 0, 1, 1),
            c("ListProducts", 0, 1, 1),
            c("ListProducts", 0, 1, 1),
            c("WatchPrices", 0, 1, 5),
            c("GetProduct", 5, 1, 0),
        ]
    );
    // Plain HTTP exchanges carry no grpc object.
    let plain = exchanges(&root().join("captures/keepalive-curl.pcap"));
    assert!(plain.iter().all(|l| l.get("grpc").is_none()));
}

#[test]
fn websocket_frames_are_counted_each_way_not_parsed() {
    // captures/websocket.pcap: captures/ws_echo.py's client sends 8 frames (5 messages,
    // one of them in two fragments, a ping and a close); the server answers with 9.
    let lines = exchanges(&root().join("captures/websocket.pcap"));
    let ws: Vec<_> = lines.iter().filter(|l| l["status"] == 101).collect();
    assert_eq!(ws.len(), 1);
    assert_eq!(ws[0]["websocket"]["client"]["frames"], 8);
    assert_eq!(ws[0]["websocket"]["client"]["messages"], 5);
    assert_eq!(ws[0]["websocket"]["server"]["frames"], 9);
    assert_eq!(ws[0]["websocket"]["server"]["messages"], 7);
    // Nothing after the upgrade is read as HTTP; the other connection's GET is.
    assert_eq!(lines.len(), 2);
    assert_eq!(lines[1]["target"], "/status");
}
