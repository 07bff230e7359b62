//! Who may ask: the `Host` allow-list (against DNS rebinding) and the token, as axum
//! middleware in front of the routes (see the [module docs](super)).

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use subtle::ConstantTimeEq;

/// The `Host` names the listener answers to, besides IP addresses and `localhost`.
#[derive(Debug, Default)]
pub(super) struct Hosts {
    /// `*` was given: any.
    any: bool,
    /// Lower case, without a trailing dot.
    names: Vec<String>,
}

/// The host of a `Host` header value, as far as [`Hosts`] cares.
#[derive(Debug, PartialEq)]
enum HostName {
    /// An IP address (`1.2.3.4`, `[::1]`), with or without a port.
    Ip,
    /// A name, lower case, without port and trailing dot.
    Name(String),
}

impl Hosts {
    pub(super) fn new(allow: &[String]) -> Hosts {
        Hosts {
            any: allow.iter().any(|h| h == "*"),
            names: allow
                .iter()
                .map(|h| {
                    let h = h.trim_start_matches('[').trim_end_matches(']');
                    h.strip_suffix('.').unwrap_or(h).to_ascii_lowercase()
                })
                .collect(),
        }
    }

    /// Whether a request with this `Host` value is served.
    fn allows(&self, host: &str) -> bool {
        if self.any {
            return true;
        }
        match host_name(host) {
            Some(HostName::Ip) => true,
            Some(HostName::Name(n)) => n == "localhost" || self.names.contains(&n),
            None => false,
        }
    }
}

/// The host of a `Host` header value (`name`, `name:port`, `1.2.3.4:port`, `[v6]:port`);
/// `None` if it is none of these.
fn host_name(value: &str) -> Option<HostName> {
    let port_ok = |p: Option<&str>| p.is_none_or(|p| !p.is_empty() && p.parse::<u16>().is_ok());
    if let Some(rest) = value.strip_prefix('[') {
        let (v6, after) = rest.split_once(']')?;
        v6.parse::<std::net::Ipv6Addr>().ok()?;
        let port = match after {
            "" => None,
            _ => Some(after.strip_prefix(':')?),
        };
        return port_ok(port).then_some(HostName::Ip);
    }
    let (host, port) = match value.rsplit_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (value, None),
    };
    if !port_ok(port) {
        return None;
    }
    if host.parse::<std::net::Ipv4Addr>().is_ok() {
        return Some(HostName::Ip);
    }
    let name = host.strip_suffix('.').unwrap_or(host);
    let valid = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'));
    valid.then(|| HostName::Name(name.to_ascii_lowercase()))
}

/// Refuses a request for a host name that is not this listener's (DNS rebinding: see the
/// module docs), with `421` and how to allow it.
pub(super) async fn require_host(
    State(hosts): State<Arc<Hosts>>,
    req: Request,
    next: Next,
) -> Response {
    let mut given = req.headers().get_all(header::HOST).iter();
    let refused = match (given.next(), given.next()) {
        (_, Some(_)) => Some("more than one Host header".to_string()),
        (Some(v), None) if !hosts.allows(v.to_str().unwrap_or("")) => {
            let shown: String = String::from_utf8_lossy(v.as_bytes())
                .chars()
                .take(100)
                .collect();
            Some(format!(
                "this listener does not answer to the host {shown:?}"
            ))
        }
        // No Host (no browser sends such a request), or one it answers to.
        _ => None,
    };
    // An absolute-form request (`GET http://name/ HTTP/1.1`) names its host there too.
    let refused = refused.or_else(|| {
        let a = req.uri().authority()?;
        (!hosts.allows(a.as_str()))
            .then(|| format!("this listener does not answer to the host {:?}", a.as_str()))
    });
    let Some(why) = refused else {
        return next.run(req).await;
    };
    (
        StatusCode::MISDIRECTED_REQUEST,
        Json(serde_json::json!({
            "error": format!(
                "{why} (a protection against DNS rebinding): use an IP address or localhost, \
                 or start the server with --http-allow-host NAME (http_allow_hosts) for each \
                 name it is reached by"
            )
        })),
    )
        .into_response()
}

/// The token of an `Authorization: Bearer <token>` value; the scheme is case-insensitive
/// (RFC 7235).
fn bearer(value: &str) -> Option<&str> {
    let (scheme, token) = value.trim_start().split_once([' ', '\t'])?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim_matches([' ', '\t']))
}

/// Whether the request carries the token (always true without one).
fn authorised(token: Option<&str>, headers: &HeaderMap) -> bool {
    let Some(expected) = token else { return true };
    let given = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(bearer)
        .or_else(|| headers.get("x-loadmon-token").and_then(|v| v.to_str().ok()));
    given.is_some_and(|g| bool::from(g.as_bytes().ct_eq(expected.as_bytes())))
}

/// Refuses a request without the token (if one is set), with `401` and how to send it.
pub(super) async fn require_token(
    State(token): State<Option<Arc<str>>>,
    req: Request,
    next: Next,
) -> Response {
    if authorised(token.as_deref(), req.headers()) {
        return next.run(req).await;
    }
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(serde_json::json!({
            "error": "a token is required: send Authorization: Bearer <token>"
        })),
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Bearer realm=\"loadmon\""),
    );
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_from_either_header_compared_exactly() {
        let mut h = HeaderMap::new();
        assert!(authorised(None, &h));
        assert!(!authorised(Some("s3cret"), &h));
        for (value, ok) in [
            ("Bearer s3cre", false),
            ("Bearer s3cret", true),
            ("bearer s3cret", true),
            ("BEARER s3cret", true),
            ("bEaReR   s3cret ", true),
            ("bearer wrong", false),
            ("Bearers3cret", false),
            ("Basic s3cret", false),
            ("s3cret", false),
            ("bearer", false),
        ] {
            h.insert(header::AUTHORIZATION, HeaderValue::from_static(value));
            assert_eq!(authorised(Some("s3cret"), &h), ok, "{value:?}");
        }
        let mut h = HeaderMap::new();
        h.insert("x-loadmon-token", HeaderValue::from_static("s3cret"));
        assert!(authorised(Some("s3cret"), &h));
        h.insert("x-loadmon-token", HeaderValue::from_static("s3cre"));
        assert!(!authorised(Some("s3cret"), &h));
    }

    #[test]
    fn host_values_are_read_as_ip_addresses_names_or_nothing() {
        let name = |n: &str| Some(HostName::Name(n.into()));
        for (value, expected) in [
            ("127.0.0.1", Some(HostName::Ip)),
            ("127.0.0.1:8080", Some(HostName::Ip)),
            ("[::1]", Some(HostName::Ip)),
            ("[::ffff:127.0.0.1]:80", Some(HostName::Ip)),
            ("Example.COM", name("example.com")),
            ("example.com.:443", name("example.com")),
            ("localhost", name("localhost")),
            ("", None),
            (":80", None),
            ("example.com:", None),
            ("example.com:99999", None),
            ("example.com:http", None),
            ("[::1", None),
            ("[::1]80", None),
            ("[example.com]", None),
            ("::1", None),
            ("user@example.com", None),
            ("exa mple.com", None),
        ] {
            assert_eq!(host_name(value), expected, "{value:?}");
        }
        let hosts = Hosts::new(&["Loadmon.Example.".into(), "[::2]".into()]);
        assert!(hosts.allows("loadmon.example:1"));
        assert!(hosts.allows("LOCALHOST"));
        assert!(hosts.allows("10.0.0.1"));
        assert!(!hosts.allows("evil.example"));
        assert!(!hosts.allows("localhost.evil.example"));
        assert!(Hosts::new(&["*".into()]).allows("evil.example"));
        assert!(!Hosts::default().allows("evil.example"));
    }
}
