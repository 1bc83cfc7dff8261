//! SSRF guard. Provider and webhook URLs are user-supplied, so a route or an
//! endpoint could point Foco at the cloud metadata service or an internal admin
//! port. Destinations are checked
//! after DNS resolution (a public name can resolve to 10.0.0.1), inside the HTTP
//! client's resolver so the checked address is the one connected to; IP-literal
//! hosts never reach a resolver and are checked when the route is read. Redirects are
//! not followed at all (see `client`).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

/// The resolver refused every address of a host.
#[derive(Debug, thiserror::Error)]
#[error("host {host} resolves only to private, loopback or link-local addresses")]
pub struct BlockedDestination {
    pub host: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlRefused {
    #[error("URL must use http or https")]
    Scheme,
    #[error("URL has no host")]
    NoHost,
    #[error("URL points at a private, loopback or link-local address")]
    PrivateAddress,
    #[error("URL must not carry credentials")]
    Credentials,
}

/// Whether a connection to `ip` is refused unless private hosts are allowed.
pub fn is_forbidden_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => is_forbidden_v4(v4),
        IpAddr::V6(v6) => is_forbidden_v6(v6),
    }
}

fn is_forbidden_v4(ip: Ipv4Addr) -> bool {
    let [a, b, c, _] = ip.octets();
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_private()
        || ip.is_link_local()
        || ip.is_broadcast()
        || ip.is_multicast()
        || ip.is_documentation()
        || a == 0 // "this network"
        || (a == 100 && (64..128).contains(&b)) // carrier-grade NAT, 100.64.0.0/10
        || (a == 192 && b == 0 && c == 0) // IETF protocol assignments, 192.0.0.0/24
        || (a == 198 && (b == 18 || b == 19)) // benchmarking, 198.18.0.0/15
        || a >= 240 // reserved
}

/// The well-known NAT64 prefix, 64:ff9b::/96 (RFC 6052): the translator connects
/// to the IPv4 address in the last 32 bits.
const NAT64_WELL_KNOWN: [u16; 6] = [0x64, 0xff9b, 0, 0, 0, 0];

fn is_forbidden_v6(ip: Ipv6Addr) -> bool {
    let segments = ip.segments();
    // Addresses that a translator or the stack turns into an IPv4 address reach
    // that address: IPv4-mapped (::ffff:0:0/96), IPv4-translated
    // (::ffff:0:0:0/96) and well-known NAT64 (so an IPv6-only cluster's DNS64
    // answers for public providers still pass).
    let embedded_v4 = Ipv4Addr::from_bits(ip.to_bits() as u32);
    if ip.to_ipv4_mapped().is_some()
        || segments[..6] == [0, 0, 0, 0, 0xffff, 0]
        || segments[..6] == NAT64_WELL_KNOWN
    {
        return is_forbidden_v4(embedded_v4);
    }
    let first = segments[0];
    ip.is_unspecified()
        || ip.is_loopback()
        || ip.is_multicast()
        || (first & 0xfe00) == 0xfc00 // unique local, fc00::/7
        || (first & 0xffc0) == 0xfe80 // link-local, fe80::/10
        || (first & 0xffc0) == 0xfec0 // deprecated site-local, fec0::/10
        || segments[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible (deprecated)
        // The rest of 64:ff9b::/32: the local-use NAT64 prefix 64:ff9b:1::/48
        // (RFC 8215), whose translators are the network's own and whose
        // embedding is theirs to choose, and unassigned space.
        || (first == 0x64 && segments[1] == 0xff9b)
        || (first == 0x2001 && segments[1] == 0) // Teredo, 2001::/32: a tunnel to any IPv4 address
        || first == 0x2002 // 6to4, 2002::/16: embeds an IPv4 address
}

/// Checks a URL before it is used: scheme, no embedded credentials, and
/// IP-literal hosts (which the resolver never sees).
pub fn check_url(url: &Url, allow_private: bool) -> Result<(), UrlRefused> {
    if url.scheme() != "https" && url.scheme() != "http" {
        return Err(UrlRefused::Scheme);
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(UrlRefused::Credentials);
    }
    let forbidden = match url.host() {
        None => return Err(UrlRefused::NoHost),
        Some(Host::Domain(_)) => false,
        Some(Host::Ipv4(ip)) => is_forbidden_v4(ip),
        Some(Host::Ipv6(ip)) => is_forbidden_v6(ip),
    };
    if forbidden && !allow_private {
        return Err(UrlRefused::PrivateAddress);
    }
    Ok(())
}

/// DNS resolution through the system resolver, keeping only permitted addresses.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    allow_private: bool,
}

impl GuardedResolver {
    pub fn new(allow_private: bool) -> Self {
        Self { allow_private }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        let allow_private = self.allow_private;
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let permitted = filter_addresses(resolved, allow_private);
            if permitted.is_empty() {
                return Err(Box::new(BlockedDestination { host })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            Ok(Box::new(permitted.into_iter()) as Addrs)
        })
    }
}

/// Drops forbidden addresses. Any forbidden address among several is dropped, not
/// the whole set, so a dual-stack host with a stray private record still works.
pub fn filter_addresses(addresses: Vec<SocketAddr>, allow_private: bool) -> Vec<SocketAddr> {
    if allow_private {
        return addresses;
    }
    addresses
        .into_iter()
        .filter(|address| !is_forbidden_ip(address.ip()))
        .collect()
}

/// Whether a request failed because the resolver refused the destination.
pub fn is_blocked(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(cause) = current {
        if cause.is::<BlockedDestination>() {
            return true;
        }
        current = cause.source();
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn private_loopback_and_link_local_are_forbidden() {
        for text in [
            "127.0.0.1",
            "127.1.2.3",
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "169.254.169.254",
            "0.0.0.0",
            "100.64.0.1",
            "255.255.255.255",
            "224.0.0.1",
            "::1",
            "::",
            "fc00::1",
            "fd12:3456::1",
            "fe80::1",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::a00:1",
            "2002:a00:1::1",
        ] {
            assert!(is_forbidden_ip(ip(text)), "{text} should be forbidden");
        }
    }

    /// Every way an IPv6 address can lead to a private IPv4 one, with
    /// 10.0.0.1, 127.0.0.1 and 169.254.169.254 embedded where the range embeds one.
    #[test]
    fn ipv6_ranges_that_reach_ipv4_addresses_are_forbidden() {
        for text in [
            // IPv4-mapped, ::ffff:0:0/96.
            "::ffff:10.0.0.1",
            "::ffff:a9fe:a9fe",
            // IPv4-translated, ::ffff:0:0:0/96.
            "::ffff:0:127.0.0.1",
            "::ffff:0:a00:1",
            // Well-known NAT64, 64:ff9b::/96.
            "64:ff9b::10.0.0.1",
            "64:ff9b::169.254.169.254",
            "64:ff9b::127.0.0.1",
            "64:ff9b::192.0.0.170",
            // Local-use NAT64, 64:ff9b:1::/48, whatever it embeds and where.
            "64:ff9b:1::a00:1",
            "64:ff9b:1:a00:1::",
            "64:ff9b:1:ffff:ffff:ffff:ffff:ffff",
            "64:ff9b:1::8.8.8.8",
            // Teredo, 2001::/32.
            "2001::1",
            "2001:0:4136:e378:8000:63bf:f5ff:fffe",
            "2001:0:ffff:ffff:ffff:ffff:ffff:ffff",
            // 6to4, 2002::/16, here around 10.0.0.1, 127.0.0.1 and 169.254.169.254.
            "2002:a00:1::1",
            "2002:7f00:1::",
            "2002:a9fe:a9fe:1:2:3:4:5",
        ] {
            assert!(is_forbidden_ip(ip(text)), "{text} should be forbidden");
        }
    }

    #[test]
    fn ietf_protocol_assignments_are_forbidden() {
        for text in ["192.0.0.0", "192.0.0.8", "192.0.0.170", "192.0.0.255"] {
            assert!(is_forbidden_ip(ip(text)), "{text} should be forbidden");
        }
        for text in ["192.0.1.1", "192.1.0.1"] {
            assert!(!is_forbidden_ip(ip(text)), "{text} should be allowed");
        }
    }

    #[test]
    fn public_addresses_are_allowed() {
        for text in [
            "8.8.8.8",
            "1.1.1.1",
            "172.32.0.1",
            "54.172.60.1",
            "2606:4700:4700::1111",
            "::ffff:8.8.8.8",
            "::ffff:0:8.8.8.8",
            // A public provider as an IPv6-only cluster's DNS64 answers for it.
            "64:ff9b::8.8.8.8",
            "64:ff9b::3.18.12.63",
            "2001:4860:4860::8888",
            "2001:db9::1",
        ] {
            assert!(!is_forbidden_ip(ip(text)), "{text} should be allowed");
        }
    }

    #[test]
    fn urls_with_private_literals_are_refused_unless_allowed() {
        let url = Url::parse("http://169.254.169.254/latest/meta-data").unwrap();
        assert_eq!(check_url(&url, false), Err(UrlRefused::PrivateAddress));
        assert_eq!(check_url(&url, true), Ok(()));
        let url = Url::parse("http://[::1]:8080/x").unwrap();
        assert_eq!(check_url(&url, false), Err(UrlRefused::PrivateAddress));
        let url = Url::parse("https://api.twilio.com/2010-04-01").unwrap();
        assert_eq!(check_url(&url, false), Ok(()));
    }

    #[test]
    fn other_schemes_and_userinfo_are_refused() {
        let url = Url::parse("file:///etc/passwd").unwrap();
        assert_eq!(check_url(&url, true), Err(UrlRefused::Scheme));
        let url = Url::parse("https://user:secret@example.com/").unwrap();
        assert_eq!(check_url(&url, true), Err(UrlRefused::Credentials));
    }

    #[test]
    fn resolved_addresses_are_filtered() {
        let addresses: Vec<SocketAddr> = vec![
            "10.1.1.1:0".parse().unwrap(),
            "93.184.216.34:0".parse().unwrap(),
        ];
        assert_eq!(
            filter_addresses(addresses.clone(), false),
            vec!["93.184.216.34:0".parse::<SocketAddr>().unwrap()]
        );
        assert_eq!(filter_addresses(addresses, true).len(), 2);
    }

    #[tokio::test]
    async fn resolver_refuses_localhost() {
        let resolver = GuardedResolver::new(false);
        let error = match resolver.resolve("localhost".parse().unwrap()).await {
            Ok(_) => panic!("localhost must be refused"),
            Err(error) => error,
        };
        assert!(is_blocked(error.as_ref()));
        let allowed = GuardedResolver::new(true);
        let addresses: Vec<SocketAddr> = match allowed.resolve("localhost".parse().unwrap()).await {
            Ok(addresses) => addresses.collect(),
            Err(error) => panic!("localhost allowed: {error}"),
        };
        assert!(addresses.iter().all(|address| address.ip().is_loopback()));
    }
}
