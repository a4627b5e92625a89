//! Origins (RFC 6454: scheme, host and port) and loopback hosts. Both clients decide from these
//! whether a request may carry credentials and whether it may travel over plain HTTP.

use std::net::IpAddr;

use url::{Host, Url};

/// Whether `left` and `right` have the same origin: the same scheme, host and port, with the
/// scheme's default port filled in (`https://a` and `https://a:443` are one origin, and host
/// names compare case-insensitively). URLs without a host (`data:`, `file:`) have no origin and
/// match nothing, not even themselves.
pub fn same_origin(left: &Url, right: &Url) -> bool {
    let origin = left.origin();
    origin.is_tuple() && origin == right.origin()
}

/// Whether `url`'s host is a loopback address: `localhost`, `127.0.0.0/8` or `::1`.
///
/// Only the exact name `localhost` counts: `localhost.example.com` is a remote host.
pub fn is_loopback(url: &Url) -> bool {
    match url.host() {
        Some(Host::Domain(domain)) => domain.eq_ignore_ascii_case("localhost"),
        Some(Host::Ipv4(address)) => IpAddr::V4(address).is_loopback(),
        Some(Host::Ipv6(address)) => IpAddr::V6(address).is_loopback(),
        None => false,
    }
}

/// [`is_loopback`] for a `host[:port]` as written in an image reference (`127.0.0.1:5000`,
/// `[::1]:5000`, `localhost`); anything that is not a valid host is not loopback.
pub fn is_loopback_host(host_and_port: &str) -> bool {
    if host_and_port.contains(['/', '@', '?', '#']) {
        return false;
    }
    Url::parse(&format!("http://{host_and_port}/")).is_ok_and(|url| is_loopback(&url))
}

/// `host:port` (or `host` when the URL names no port) of `url`, for messages and for matching
/// against lists of hosts such as insecure registries.
pub fn host_and_port(url: &Url) -> String {
    let host = url.host_str().unwrap_or_default();
    match url.port() {
        Some(port) => format!("{host}:{port}"),
        None => host.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(text: &str) -> Url {
        Url::parse(text).unwrap()
    }

    #[test]
    fn origins_compare_scheme_host_and_effective_port() {
        for (left, right, same) in [
            (
                "https://reg.example/v2/a",
                "https://reg.example/upload?x=1",
                true,
            ),
            ("https://reg.example/", "https://reg.example:443/", true),
            ("https://REG.example/", "https://reg.example/", true),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5000/v2/", true),
            ("https://reg.example/", "http://reg.example/", false),
            ("https://reg.example/", "https://reg.example:8443/", false),
            (
                "https://reg.example/",
                "https://uploads.reg.example/",
                false,
            ),
            ("http://127.0.0.1:5000/", "http://localhost:5000/", false),
            ("http://127.0.0.1:5000/", "http://127.0.0.1:5001/", false),
            ("data:text/plain,x", "data:text/plain,x", false),
        ] {
            assert_eq!(
                same_origin(&url(left), &url(right)),
                same,
                "{left} vs {right}"
            );
        }
    }

    #[test]
    fn only_loopback_hosts_are_loopback() {
        for (host, expected) in [
            ("127.0.0.1:5000", true),
            ("127.1.2.3", true),
            ("localhost:5000", true),
            ("LOCALHOST", true),
            ("localhost", true),
            ("[::1]:5000", true),
            ("10.0.0.1:5000", false),
            ("ghcr.io", false),
            ("localhost.evil.example", false),
            ("evil.example/@127.0.0.1", false),
            ("127.0.0.1@evil.example", false),
            ("", false),
        ] {
            assert_eq!(is_loopback_host(host), expected, "{host}");
        }
    }

    #[test]
    fn host_and_port_keeps_an_explicit_port_only() {
        assert_eq!(
            host_and_port(&url("https://reg.example/v2/")),
            "reg.example"
        );
        assert_eq!(
            host_and_port(&url("http://reg.example:8080/x?y")),
            "reg.example:8080"
        );
        assert_eq!(host_and_port(&url("http://[::1]:5000/")), "[::1]:5000");
    }
}
