/*!
Tunnel and label headers that mirrored traffic arrives in: VXLAN and Geneve (cloud traffic
mirroring), GRE with ERSPAN II/III (switch port mirroring), Teredo, and MPLS label stacks.

Each function takes the tunnel's payload and says what is inside, plus an identifier
(VNI, ERSPAN session) that keeps flows of different tunnels apart.
*/

use super::link::{ethertype, Next};

/// Well-known UDP ports of tunnels.
pub const VXLAN_PORT: u16 = 4789;
pub const GENEVE_PORT: u16 = 6081;
pub const TEREDO_PORT: u16 = 3544;

fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn be24(d: &[u8], at: usize) -> Option<u32> {
    d.get(at..at + 3)
        .map(|b| u32::from_be_bytes([0, b[0], b[1], b[2]]))
}

/// VXLAN (RFC 7348): 8-byte header with the I flag, then an Ethernet frame.
pub fn vxlan(udp_payload: &[u8]) -> Option<(Next<'_>, u32)> {
    let flags = *udp_payload.first()?;
    if flags & 0x08 == 0 {
        return None;
    }
    let vni = be24(udp_payload, 4)?;
    Some((Next::Ethernet(udp_payload.get(8..)?), vni))
}

/// Geneve (RFC 8926): 8-byte header plus options, then a frame of the named protocol.
pub fn geneve(udp_payload: &[u8]) -> Option<(Next<'_>, u32)> {
    let b0 = *udp_payload.first()?;
    if b0 >> 6 != 0 {
        return None;
    }
    let opt_len = (b0 & 0x3f) as usize * 4;
    let proto = be16(udp_payload, 2)?;
    let vni = be24(udp_payload, 4)?;
    let inner = udp_payload.get(8 + opt_len..)?;
    Some((ether_next(proto, inner), vni))
}

/// Teredo (RFC 4380): optional authentication and origin indications, then IPv6.
pub fn teredo(udp_payload: &[u8]) -> Option<Next<'_>> {
    let mut at = 0;
    for _ in 0..2 {
        match (udp_payload.get(at)?, udp_payload.get(at + 1)?) {
            (0, 1) => {
                let id_len = *udp_payload.get(at + 2)? as usize;
                let au_len = *udp_payload.get(at + 3)? as usize;
                at += 4 + id_len + au_len + 8 + 1;
            }
            (0, 0) => at += 8,
            _ => break,
        }
    }
    let inner = udp_payload.get(at..)?;
    (inner.first()? >> 4 == 6 && inner.len() >= 40).then_some(Next::Ip(inner))
}

/// GRE (RFC 2784/2890), including ERSPAN type I, II and III inside it.
pub fn gre(payload: &[u8]) -> Option<(Next<'_>, u32)> {
    let flags = be16(payload, 0)?;
    if flags & 0x7 != 0 {
        // Version 1 is PPTP's enhanced GRE, which carries PPP, not frames.
        return None;
    }
    let proto = be16(payload, 2)?;
    let checksum = flags & 0x8000 != 0;
    let key = flags & 0x2000 != 0;
    let sequence = flags & 0x1000 != 0;
    let mut at = 4;
    if checksum {
        at += 4;
    }
    let mut session = 0;
    if key {
        session = u32::from_be_bytes(payload.get(at..at + 4)?.try_into().ok()?);
        at += 4;
    }
    if sequence {
        at += 4;
    }
    let inner = payload.get(at..)?;
    match proto {
        ethertype::ERSPAN_II if !sequence => Some((Next::Ethernet(inner), session)),
        ethertype::ERSPAN_II => {
            let session = be16(inner, 2)? as u32 & 0x3ff;
            Some((Next::Ethernet(inner.get(8..)?), session))
        }
        ethertype::ERSPAN_III => {
            let session = be16(inner, 2)? as u32 & 0x3ff;
            let optional = inner.get(11)? & 0x01 != 0;
            let len = if optional { 20 } else { 12 };
            Some((Next::Ethernet(inner.get(len..)?), session))
        }
        _ => Some((ether_next(proto, inner), session)),
    }
}

/// Pops an MPLS label stack; returns what the bottom label carries by its first nibble.
pub fn mpls(payload: &[u8]) -> Option<Next<'_>> {
    let mut at = 0;
    // RFC 3032 does not bound the stack; 16 labels is far past real deployments.
    for _ in 0..16 {
        let bottom = payload.get(at + 2)? & 0x01 != 0;
        at += 4;
        if bottom {
            let inner = payload.get(at..)?;
            return match inner.first()? >> 4 {
                4 | 6 => Some(Next::Ip(inner)),
                // A pseudowire control word (RFC 4385), then an Ethernet frame.
                0 => Some(Next::Ethernet(inner.get(4..)?)),
                _ => None,
            };
        }
    }
    None
}

/// Maps an EtherType-named payload to the next step.
pub fn ether_next(proto: u16, inner: &[u8]) -> Next<'_> {
    match proto {
        ethertype::TRANSPARENT_ETHERNET => Next::Ethernet(inner),
        other => Next::EtherType(other, inner),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vxlan_needs_the_i_flag() {
        let mut d = vec![0x08, 0, 0, 0, 0, 0, 42, 0];
        d.extend_from_slice(&[1, 2, 3]);
        assert_eq!(vxlan(&d), Some((Next::Ethernet(&[1, 2, 3]), 42)));
        d[0] = 0;
        assert_eq!(vxlan(&d), None);
        assert_eq!(vxlan(&d[..3]), None);
    }

    #[test]
    fn geneve_skips_options() {
        let mut d = vec![0x01, 0, 0x65, 0x58, 0, 0, 7, 0];
        d.extend_from_slice(&[9, 9, 9, 9, 0xee]);
        assert_eq!(geneve(&d), Some((Next::Ethernet(&[0xee]), 7)));
    }

    #[test]
    fn gre_with_key_and_erspan() {
        let d = [0x20, 0, 0x08, 0x00, 0, 0, 0, 5, 0x45];
        assert_eq!(gre(&d), Some((Next::EtherType(0x0800, &[0x45]), 5)));
        let mut e = vec![0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
        e.extend_from_slice(&[0x10, 0, 0x00, 0x07, 0, 0, 0, 0, 0xaa]);
        assert_eq!(gre(&e), Some((Next::Ethernet(&[0xaa]), 7)));
        assert_eq!(gre(&[0x00, 0x01, 0, 0]), None);
    }

    #[test]
    fn mpls_stack_to_ip() {
        let d = [0, 0, 0x10, 64, 0, 0, 0x11, 64, 0x45, 0];
        assert_eq!(mpls(&d), Some(Next::Ip(&[0x45, 0])));
        assert_eq!(mpls(&[0, 0, 0x10, 64]), None);
        assert_eq!(mpls(&[0u8; 80]), None);
    }
}
