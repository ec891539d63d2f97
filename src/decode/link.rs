/*!
Link layers: from a capture record and its LINKTYPE to the network-layer protocol and bytes.

Ethernet (with VLAN tags) is followed to its EtherType; the other link types name the
protocol their own way (an address family, an SLL protocol field, LLC/SNAP in 802.11).
Everything reads through `get(..)`, so no input makes it panic.
*/

/// LINKTYPE_* values we understand (see tcpdump.org/linktypes.html).
pub mod linktype {
    pub const NULL: u32 = 0;
    pub const ETHERNET: u32 = 1;
    pub const RAW_OPENBSD: u32 = 12;
    pub const RAW_BSDOS: u32 = 14;
    pub const RAW: u32 = 101;
    pub const IEEE802_11: u32 = 105;
    pub const LOOP: u32 = 108;
    pub const LINUX_SLL: u32 = 113;
    pub const IEEE802_11_RADIOTAP: u32 = 127;
    pub const IPV4: u32 = 228;
    pub const IPV6: u32 = 229;
    pub const NFLOG: u32 = 239;
    pub const ETHERNET_MPACKET: u32 = 274;
    pub const LINUX_SLL2: u32 = 276;
}

/// EtherType values the decoder follows.
pub mod ethertype {
    pub const IPV4: u16 = 0x0800;
    pub const IPV6: u16 = 0x86dd;
    pub const VLAN: u16 = 0x8100;
    pub const QINQ: u16 = 0x88a8;
    pub const QINQ_OLD: u16 = 0x9100;
    pub const MPLS: u16 = 0x8847;
    pub const MPLS_MULTICAST: u16 = 0x8848;
    pub const TRANSPARENT_ETHERNET: u16 = 0x6558;
    pub const ERSPAN_II: u16 = 0x88be;
    pub const ERSPAN_III: u16 = 0x22eb;
}

/// What comes after the link header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next<'a> {
    /// An Ethernet frame (header included).
    Ethernet(&'a [u8]),
    /// A payload with an EtherType.
    EtherType(u16, &'a [u8]),
    /// An IPv4 or IPv6 packet, version from the first nibble.
    Ip(&'a [u8]),
}

/// Why a link header could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkError {
    /// LINKTYPE we do not decode.
    UnsupportedLinkType(u32),
    /// The record is shorter than the link header.
    Truncated,
    /// 802.11 frame that carries no data we can read (management, control, encrypted).
    NotData,
    /// The link header names a protocol that is not IP.
    NotIp,
}

fn be16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_be_bytes([b[0], b[1]]))
}

fn le16(d: &[u8], at: usize) -> Option<u16> {
    d.get(at..at + 2).map(|b| u16::from_le_bytes([b[0], b[1]]))
}

/// Strips the link header of `linktype` from `data`.
pub fn strip(linktype: u32, data: &[u8]) -> Result<Next<'_>, LinkError> {
    use linktype::*;
    let rest = |n: usize| data.get(n..).ok_or(LinkError::Truncated);
    match linktype {
        ETHERNET => Ok(Next::Ethernet(data)),
        ETHERNET_MPACKET => Ok(Next::Ethernet(rest(8)?)),
        RAW | RAW_OPENBSD | RAW_BSDOS | IPV4 | IPV6 => Ok(Next::Ip(data)),
        NULL | LOOP => {
            let raw = data.get(0..4).ok_or(LinkError::Truncated)?;
            let le = u32::from_le_bytes([raw[0], raw[1], raw[2], raw[3]]);
            let be = u32::from_be_bytes([raw[0], raw[1], raw[2], raw[3]]);
            // AF_INET is 2 everywhere; AF_INET6 is 10 (Linux), 24 (NetBSD/OpenBSD),
            // 28 (FreeBSD), 30 (macOS). The header is in the writer's byte order.
            let family = if le < 256 { le } else { be };
            match family {
                2 | 10 | 24 | 28 | 30 => Ok(Next::Ip(rest(4)?)),
                _ => Err(LinkError::NotIp),
            }
        }
        LINUX_SLL => {
            let proto = be16(data, 14).ok_or(LinkError::Truncated)?;
            Ok(Next::EtherType(proto, rest(16)?))
        }
        LINUX_SLL2 => {
            let proto = be16(data, 0).ok_or(LinkError::Truncated)?;
            Ok(Next::EtherType(proto, rest(20)?))
        }
        IEEE802_11_RADIOTAP => {
            let len = le16(data, 2).ok_or(LinkError::Truncated)? as usize;
            ieee80211(rest(len)?)
        }
        IEEE802_11 => ieee80211(data),
        NFLOG => nflog(data),
        other => Err(LinkError::UnsupportedLinkType(other)),
    }
}

/// 802.11 data frames carrying LLC/SNAP.
fn ieee80211(frame: &[u8]) -> Result<Next<'_>, LinkError> {
    let fc0 = *frame.first().ok_or(LinkError::Truncated)?;
    let fc1 = *frame.get(1).ok_or(LinkError::Truncated)?;
    let frame_type = (fc0 >> 2) & 0x3;
    let subtype = fc0 >> 4;
    if frame_type != 2 || fc1 & 0x40 != 0 || subtype & 0x4 != 0 {
        // Not data, protected, or a null-data subtype.
        return Err(LinkError::NotData);
    }
    let mut header = 24;
    if fc1 & 0x3 == 0x3 {
        header += 6;
    }
    let qos = subtype & 0x8 != 0;
    if qos {
        header += 2;
        if fc1 & 0x80 != 0 {
            header += 4;
        }
    }
    let llc = frame.get(header..).ok_or(LinkError::Truncated)?;
    if llc.get(0..3) == Some(&[0xaa, 0xaa, 0x03]) {
        let proto = be16(llc, 6).ok_or(LinkError::Truncated)?;
        Ok(Next::EtherType(
            proto,
            llc.get(8..).ok_or(LinkError::Truncated)?,
        ))
    } else {
        Err(LinkError::NotIp)
    }
}

/// Linux NFLOG: a 4-byte header, then TLVs; the packet is TLV type 9 (NFULA_PAYLOAD).
fn nflog(data: &[u8]) -> Result<Next<'_>, LinkError> {
    let mut at = 4;
    while at + 4 <= data.len() {
        // TLV lengths and types are in host byte order; captures are little-endian hosts
        // almost always, so read LE and fall back to BE when LE is implausible.
        let mut len = le16(data, at).ok_or(LinkError::Truncated)? as usize;
        let mut kind = le16(data, at + 2).ok_or(LinkError::Truncated)?;
        if len < 4 || at + len > data.len() {
            len = be16(data, at).ok_or(LinkError::Truncated)? as usize;
            kind = be16(data, at + 2).ok_or(LinkError::Truncated)?;
        }
        if len < 4 {
            return Err(LinkError::Truncated);
        }
        if kind & 0x7fff == 9 {
            let end = (at + len).min(data.len());
            return Ok(Next::Ip(data.get(at + 4..end).ok_or(LinkError::Truncated)?));
        }
        at += (len + 3) & !3;
    }
    Err(LinkError::Truncated)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn null_family_in_either_byte_order() {
        let mut le = vec![2, 0, 0, 0];
        le.extend_from_slice(&[0x45; 20]);
        assert!(matches!(strip(linktype::NULL, &le), Ok(Next::Ip(_))));
        let be = [0, 0, 0, 30, 0x60];
        assert_eq!(strip(linktype::NULL, &be), Ok(Next::Ip(&[0x60])));
        assert_eq!(strip(linktype::NULL, &[7, 0, 0, 0]), Err(LinkError::NotIp));
        assert_eq!(strip(linktype::NULL, &[2, 0]), Err(LinkError::Truncated));
    }

    #[test]
    fn sll_and_sll2_name_the_protocol() {
        let mut sll = vec![0u8; 16];
        sll[14] = 0x08;
        sll.push(0x45);
        assert_eq!(
            strip(linktype::LINUX_SLL, &sll),
            Ok(Next::EtherType(0x0800, &[0x45]))
        );
        let mut sll2 = vec![0u8; 20];
        sll2[0] = 0x86;
        sll2[1] = 0xdd;
        assert_eq!(
            strip(linktype::LINUX_SLL2, &sll2),
            Ok(Next::EtherType(0x86dd, &[]))
        );
        assert_eq!(
            strip(linktype::LINUX_SLL2, &sll2[..10]),
            Err(LinkError::Truncated)
        );
    }

    #[test]
    fn short_and_unknown_inputs_never_panic() {
        for lt in [0, 1, 12, 101, 105, 108, 113, 127, 228, 239, 274, 276, 9999] {
            for len in 0..40 {
                let data = vec![0xffu8; len];
                let _ = strip(lt, &data);
            }
        }
        assert_eq!(strip(9999, &[]), Err(LinkError::UnsupportedLinkType(9999)));
    }

    #[test]
    fn nflog_finds_the_payload_tlv() {
        let mut d = vec![2, 0, 0, 0];
        d.extend_from_slice(&[8, 0, 1, 0, 0, 0, 0, 0]); // some TLV
        d.extend_from_slice(&[6, 0, 9, 0, 0x45, 0x00, 0, 0]); // payload, padded
        assert_eq!(strip(linktype::NFLOG, &d), Ok(Next::Ip(&[0x45, 0x00])));
    }
}
