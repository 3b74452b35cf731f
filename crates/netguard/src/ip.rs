//! Which IP addresses a tenant-supplied URL may reach.
//!
//! [`classify`] names the special-purpose range an address falls in (IANA's IPv4 and IPv6
//! special-purpose registries, plus the cloud metadata endpoints), or `None` for an ordinary
//! public address. IPv6 forms that embed an IPv4 address (mapped `::ffff:a.b.c.d`, the
//! deprecated compatible `::a.b.c.d`, NAT64 `64:ff9b::/96` and 6to4 `2002::/16`) are judged
//! by the embedded address, so `::ffff:127.0.0.1` is loopback like `127.0.0.1`.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The kind of non-public address a URL pointed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressClass {
    /// `0.0.0.0/8` other than `0.0.0.0` itself ("this network").
    ThisNetwork,
    /// `0.0.0.0` or `::`.
    Unspecified,
    /// `127.0.0.0/8` or `::1`.
    Loopback,
    /// RFC 1918 (`10/8`, `172.16/12`, `192.168/16`), deprecated IPv6 site-local
    /// `fec0::/10`, and local-use NAT64 `64:ff9b:1::/48`.
    Private,
    /// Carrier-grade NAT, `100.64.0.0/10`.
    SharedCgnat,
    /// `169.254.0.0/16` or `fe80::/10`.
    LinkLocal,
    /// A cloud metadata endpoint (`169.254.169.254`, `169.254.170.2`, `100.100.100.200`,
    /// `fd00:ec2::254`) or host name (`metadata.google.internal`, ...). Refused even when
    /// private upstreams are allowed.
    CloudMetadata,
    /// IPv6 unique-local, `fc00::/7`.
    UniqueLocal,
    /// `224.0.0.0/4` or `ff00::/8`.
    Multicast,
    /// `255.255.255.255`.
    Broadcast,
    /// `192.0.2/24`, `198.51.100/24`, `203.0.113/24`, `2001:db8::/32`, `3fff::/20`.
    Documentation,
    /// Benchmarking, `198.18.0.0/15` or `2001:2::/48`.
    Benchmarking,
    /// Anything else set aside: `192.0.0/24`, `192.88.99/24`, `240/4`, IPv6 outside
    /// `2000::/3`, Teredo `2001::/32`, the discard prefix `100::/64`, ...
    Reserved,
}

impl AddressClass {
    /// A noun phrase with its article, for error sentences: "a private address".
    pub fn describe(self) -> &'static str {
        match self {
            AddressClass::ThisNetwork => "a \"this network\" address",
            AddressClass::Unspecified => "an unspecified address",
            AddressClass::Loopback => "a loopback address",
            AddressClass::Private => "a private address",
            AddressClass::SharedCgnat => "a shared (carrier-grade NAT) address",
            AddressClass::LinkLocal => "a link-local address",
            AddressClass::CloudMetadata => "a cloud metadata address",
            AddressClass::UniqueLocal => "a unique-local address",
            AddressClass::Multicast => "a multicast address",
            AddressClass::Broadcast => "a broadcast address",
            AddressClass::Documentation => "a documentation address",
            AddressClass::Benchmarking => "a benchmarking address",
            AddressClass::Reserved => "a reserved address",
        }
    }

    /// Whether even `HUB_ALLOW_PRIVATE_UPSTREAMS=true` does not open this class (only cloud
    /// metadata: no WhatsApp provider lives there, and it hands out cloud credentials).
    pub fn always_forbidden(self) -> bool {
        matches!(self, AddressClass::CloudMetadata)
    }
}

impl fmt::Display for AddressClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.describe())
    }
}

/// The special-purpose class of `ip`, or `None` for an ordinary public address.
pub fn classify(ip: IpAddr) -> Option<AddressClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

/// The class that makes `ip` unreachable under this setting: every class when private
/// upstreams are not allowed, only [`AddressClass::always_forbidden`] ones when they are.
pub fn forbidden(ip: IpAddr, allow_private: bool) -> Option<AddressClass> {
    classify(ip).filter(|class| !allow_private || class.always_forbidden())
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddressClass> {
    let [a, b, c, d] = ip.octets();
    let class = match (a, b, c, d) {
        (169, 254, 169, 254) | (169, 254, 170, 2) | (100, 100, 100, 200) => {
            AddressClass::CloudMetadata
        }
        (0, 0, 0, 0) => AddressClass::Unspecified,
        (0, ..) => AddressClass::ThisNetwork,
        (10, ..) => AddressClass::Private,
        (100, 64..=127, ..) => AddressClass::SharedCgnat,
        (127, ..) => AddressClass::Loopback,
        (169, 254, ..) => AddressClass::LinkLocal,
        (172, 16..=31, ..) => AddressClass::Private,
        (192, 0, 0, _) | (192, 88, 99, _) => AddressClass::Reserved,
        (192, 0, 2, _) | (198, 51, 100, _) | (203, 0, 113, _) => AddressClass::Documentation,
        (192, 168, ..) => AddressClass::Private,
        (198, 18..=19, ..) => AddressClass::Benchmarking,
        (224..=239, ..) => AddressClass::Multicast,
        (255, 255, 255, 255) => AddressClass::Broadcast,
        (240..=255, ..) => AddressClass::Reserved,
        _ => return None,
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddressClass> {
    let segments = ip.segments();
    if ip.is_unspecified() {
        return Some(AddressClass::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddressClass::Loopback);
    }
    if let Some(v4) = ip.to_ipv4_mapped() {
        return classify_v4(v4);
    }
    // Deprecated IPv4-compatible `::a.b.c.d`: judged by the embedded address, and never
    // public in its own right.
    if segments[..6] == [0; 6] {
        return Some(
            classify_v4(embedded_v4(segments[6], segments[7])).unwrap_or(AddressClass::Reserved),
        );
    }
    // NAT64 well-known prefix: reaches the embedded IPv4 address.
    if segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return classify_v4(embedded_v4(segments[6], segments[7]));
    }
    let class = match segments {
        [0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254] => AddressClass::CloudMetadata,
        [0x64, 0xff9b, 0x1, ..] => AddressClass::Private,
        [0x100, 0, 0, 0, ..] => AddressClass::Reserved,
        [0x2001, 0x0db8, ..] => AddressClass::Documentation,
        [0x2001, 0x2, 0, ..] => AddressClass::Benchmarking,
        [0x2001, 0, ..] => AddressClass::Reserved,
        // 6to4: reaches the embedded IPv4 address.
        [0x2002, hi, lo, ..] => return classify_v4(embedded_v4(hi, lo)),
        [s, ..] if s & 0xfff0 == 0x3ff0 => AddressClass::Documentation,
        [s, ..] if s & 0xfe00 == 0xfc00 => AddressClass::UniqueLocal,
        [s, ..] if s & 0xffc0 == 0xfe80 => AddressClass::LinkLocal,
        [s, ..] if s & 0xffc0 == 0xfec0 => AddressClass::Private,
        [s, ..] if s & 0xff00 == 0xff00 => AddressClass::Multicast,
        // Global unicast is 2000::/3; everything else is unassigned or reserved.
        [s, ..] if s & 0xe000 != 0x2000 => AddressClass::Reserved,
        _ => return None,
    };
    Some(class)
}

fn embedded_v4(hi: u16, lo: u16) -> Ipv4Addr {
    let [a, b] = hi.to_be_bytes();
    let [c, d] = lo.to_be_bytes();
    Ipv4Addr::new(a, b, c, d)
}

/// Host names that are refused before any DNS lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NameClass {
    /// A cloud metadata host name (always refused).
    Metadata,
    /// `localhost`, `*.localhost`, `*.local`, `*.internal`, `*.localdomain`, or a single-label
    /// name (resolved through `/etc/hosts` or search domains, e.g. a container's neighbours).
    Local,
}

const METADATA_NAMES: [&str; 6] = [
    "metadata.google.internal",
    "metadata.goog",
    "metadata",
    "instance-data",
    "instance-data.ec2.internal",
    "metadata.tencentyun.com",
];

const LOCAL_SUFFIXES: [&str; 4] = [".localhost", ".local", ".internal", ".localdomain"];

/// The class of a host *name* (not an IP literal), judged on the name alone. ASCII case and a
/// trailing dot are ignored.
pub(crate) fn classify_name(host: &str) -> Option<NameClass> {
    let host = host.strip_suffix('.').unwrap_or(host);
    if METADATA_NAMES
        .iter()
        .any(|name| host.eq_ignore_ascii_case(name))
    {
        return Some(NameClass::Metadata);
    }
    let lower_ends_with = |suffix: &str| {
        host.len() > suffix.len()
            && host
                .get(host.len() - suffix.len()..)
                .is_some_and(|tail| tail.eq_ignore_ascii_case(suffix))
    };
    if host.eq_ignore_ascii_case("localhost")
        || !host.contains('.')
        || LOCAL_SUFFIXES.iter().any(|suffix| lower_ends_with(suffix))
    {
        return Some(NameClass::Local);
    }
    None
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, reason = "tests")]

    use super::*;

    fn class(ip: &str) -> Option<AddressClass> {
        classify(ip.parse().unwrap())
    }

    #[test]
    fn ipv4_ranges() {
        use AddressClass::*;
        let cases = [
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("10.0.0.5", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("100.63.255.255", None),
            ("100.64.0.1", Some(SharedCgnat)),
            ("100.127.255.254", Some(SharedCgnat)),
            ("100.128.0.0", None),
            ("100.100.100.200", Some(CloudMetadata)),
            ("127.0.0.1", Some(Loopback)),
            ("127.255.0.9", Some(Loopback)),
            ("169.254.1.1", Some(LinkLocal)),
            ("169.254.169.254", Some(CloudMetadata)),
            ("169.254.170.2", Some(CloudMetadata)),
            ("172.15.255.255", None),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.32.0.0", None),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.10", Some(Documentation)),
            ("192.88.99.1", Some(Reserved)),
            ("192.168.1.1", Some(Private)),
            ("192.169.0.1", None),
            ("198.17.255.255", None),
            ("198.18.0.1", Some(Benchmarking)),
            ("198.19.255.255", Some(Benchmarking)),
            ("198.51.100.7", Some(Documentation)),
            ("203.0.113.200", Some(Documentation)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("240.0.0.1", Some(Reserved)),
            ("255.255.255.254", Some(Reserved)),
            ("255.255.255.255", Some(Broadcast)),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("93.184.216.34", None),
            ("191.255.255.255", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_ranges() {
        use AddressClass::*;
        let cases = [
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fd00:ec2::254", Some(CloudMetadata)),
            ("ff02::1", Some(Multicast)),
            ("ff0e::1", Some(Multicast)),
            ("2001:db8::1", Some(Documentation)),
            ("3fff::1", Some(Documentation)),
            ("2001:2::1", Some(Benchmarking)),
            ("2001::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("64:ff9b:1::1", Some(Private)),
            ("4000::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2a00:1450:4001::200e", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_forms_of_ipv4_addresses_are_judged_by_the_ipv4_address() {
        use AddressClass::*;
        let cases = [
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:10.0.0.5", Some(Private)),
            ("::ffff:169.254.169.254", Some(CloudMetadata)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::8.8.8.8", Some(Reserved)),
            ("64:ff9b::10.0.0.1", Some(Private)),
            ("64:ff9b::7f00:1", Some(Loopback)),
            ("64:ff9b::8.8.8.8", None),
            ("2002:7f00:1::1", Some(Loopback)),
            ("2002:a9fe:a9fe::", Some(CloudMetadata)),
            ("2002:0808:0808::1", None),
        ];
        for (ip, expected) in cases {
            assert_eq!(class(ip), expected, "{ip}");
        }
    }

    #[test]
    fn allow_private_opens_everything_but_metadata() {
        let ip = |s: &str| s.parse::<IpAddr>().unwrap();
        assert_eq!(forbidden(ip("127.0.0.1"), true), None);
        assert_eq!(forbidden(ip("10.1.2.3"), true), None);
        assert_eq!(forbidden(ip("fe80::1"), true), None);
        assert_eq!(
            forbidden(ip("169.254.169.254"), true),
            Some(AddressClass::CloudMetadata)
        );
        assert_eq!(
            forbidden(ip("::ffff:169.254.169.254"), true),
            Some(AddressClass::CloudMetadata)
        );
        assert_eq!(
            forbidden(ip("127.0.0.1"), false),
            Some(AddressClass::Loopback)
        );
        assert_eq!(forbidden(ip("8.8.8.8"), false), None);
    }

    #[test]
    fn names() {
        for name in [
            "metadata.google.internal",
            "METADATA.google.internal.",
            "metadata.goog",
            "metadata",
            "instance-data",
        ] {
            assert_eq!(classify_name(name), Some(NameClass::Metadata), "{name}");
        }
        for name in [
            "localhost",
            "LocalHost.",
            "api.localhost",
            "printer.local",
            "db.corp.internal",
            "redis",
            "host.localdomain",
        ] {
            assert_eq!(classify_name(name), Some(NameClass::Local), "{name}");
        }
        for name in [
            "api.z-api.io",
            "graph.facebook.com",
            "evo.cliente.com.br",
            "internal.example.com",
            "local.example",
        ] {
            assert_eq!(classify_name(name), None, "{name}");
        }
    }
}
