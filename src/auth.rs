//! The token's challenge–response, without I/O: nonces, the two proofs and their check.
//!
//! With a token, neither side sends it. The server sends a fresh random nonce
//! (`challenge:<server_nonce>`); the client answers with a nonce of its own and its proof
//! (`auth:<client_nonce>:<client_proof>`); the server checks it and answers with its own proof
//! (`auth_ok:<server_proof>`), which the client checks in turn: a client (a fleet worker
//! above all, which writes what its server plans) goes on only with a server that knows the
//! token. Each proof is HMAC-SHA256 keyed with the token's UTF-8 bytes over the ASCII text
//!
//! ```text
//! loadmon-auth-1|<role>|<server_nonce>|<client_nonce>
//! ```
//!
//! with `<role>` `client` or `server` and both nonces as 64 lower-case hex digits (32 random
//! bytes each). A proof is bound to both nonces, so it is worth nothing on another connection
//! (the server's nonce is new on each, and the client's makes the server's proof new too), and
//! to its role, so that a peer cannot hand one side's proof back as the other's.
//!
//! What this does not do: it authenticates the handshake, not the connection. Lines after it
//! travel in clear and unsigned, so someone who can change traffic on the path (not just read
//! it) can still take over a connection after it authenticated. On such a network, run
//! loadmon through a tunnel (ssh, WireGuard, a TLS proxy).
//!
//! # Examples
//! ```
//! use loadmon::auth::{prove, verify, Nonce, Role};
//!
//! let (server, client) = (Nonce::random().unwrap(), Nonce::random().unwrap());
//! let proof = prove("s3cret", Role::Client, &server, &client);
//! assert!(verify("s3cret", Role::Client, &server, &client, &proof));
//! assert!(!verify("guess", Role::Client, &server, &client, &proof));
//! // The client's proof is no server's proof.
//! assert!(!verify("s3cret", Role::Server, &server, &client, &proof));
//! ```

use std::fmt;

use hmac::{KeyInit, Mac};
use subtle::ConstantTimeEq;

use crate::error::{Error, Result};

pub use crate::units::{NONCE_BYTES, PROOF_BYTES};
/// What every proof's input starts with (names the scheme and its version).
pub const LABEL: &str = "loadmon-auth-1";

type HmacSha256 = hmac::Hmac<sha2::Sha256>;

/// A random value sent once: the server's in `challenge`, the client's in `auth`.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Nonce(pub [u8; NONCE_BYTES]);

impl Nonce {
    /// A nonce from the operating system's random source.
    ///
    /// # Errors
    /// [`Error::Internal`] if the system gives no random bytes (it never should).
    pub fn random() -> Result<Nonce> {
        let mut bytes = [0u8; NONCE_BYTES];
        getrandom::fill(&mut bytes)
            .map_err(|e| Error::Internal(format!("no random bytes from the system: {e}")))?;
        Ok(Nonce(bytes))
    }
}

impl fmt::Display for Nonce {
    /// 64 lower-case hex digits, as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Nonce {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Nonce({self})")
    }
}

/// A proof that its sender knows the token (see the module's documentation). Compared in
/// constant time.
#[derive(Clone, Copy, Eq)]
pub struct Proof(pub [u8; PROOF_BYTES]);

impl PartialEq for Proof {
    fn eq(&self, other: &Proof) -> bool {
        self.0.ct_eq(&other.0).into()
    }
}

impl fmt::Display for Proof {
    /// 64 lower-case hex digits, as on the wire.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for Proof {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Proof({self})")
    }
}

/// Whose proof: the two sides prove over different inputs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// The client's proof, in `auth`.
    Client,
    /// The server's proof, in `auth_ok`.
    Server,
}

impl Role {
    fn name(self) -> &'static str {
        match self {
            Role::Client => "client",
            Role::Server => "server",
        }
    }
}

/// The HMAC over `LABEL|role|server|client`, keyed with `token`.
fn mac(token: &str, role: Role, server: &Nonce, client: &Nonce) -> HmacSha256 {
    // HMAC takes a key of any length: this never fails; a zero key would still be a key.
    let mut m = <HmacSha256 as KeyInit>::new_from_slice(token.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts keys of any length"));
    m.update(format!("{LABEL}|{}|{server}|{client}", role.name()).as_bytes());
    m
}

/// `role`'s proof for the connection with these nonces.
pub fn prove(token: &str, role: Role, server: &Nonce, client: &Nonce) -> Proof {
    Proof(
        mac(token, role, server, client)
            .finalize()
            .into_bytes()
            .into(),
    )
}

/// Whether `proof` is `role`'s proof for these nonces under `token` (in constant time).
pub fn verify(token: &str, role: Role, server: &Nonce, client: &Nonce, proof: &Proof) -> bool {
    mac(token, role, server, client)
        .verify_slice(&proof.0)
        .is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented input, computed by hand: another implementation (Python's `hmac`, say)
    /// gets the same bytes.
    #[test]
    fn the_proof_is_hmac_sha256_over_the_documented_text() {
        let server = Nonce([0x11; NONCE_BYTES]);
        let client = Nonce([0xab; NONCE_BYTES]);
        let text = format!(
            "loadmon-auth-1|client|{}|{}",
            "11".repeat(32),
            "ab".repeat(32)
        );
        let mut m = <HmacSha256 as KeyInit>::new_from_slice(b"s3cret").unwrap();
        m.update(text.as_bytes());
        let want: [u8; 32] = m.finalize().into_bytes().into();
        assert_eq!(prove("s3cret", Role::Client, &server, &client).0, want);
        // A known answer from another implementation, so that a change of crate or encoding
        // cannot go unnoticed.
        assert_eq!(
            prove("s3cret", Role::Client, &server, &client).to_string(),
            KNOWN_CLIENT_PROOF
        );
    }

    /// Python: `hmac.new(b"s3cret", text.encode(), hashlib.sha256).hexdigest()`.
    const KNOWN_CLIENT_PROOF: &str =
        "1a71cf5aa688040288b18ec5de2faa3f356c909eceec21e0b8829053194c228c";

    #[test]
    fn a_proof_is_bound_to_token_role_and_both_nonces() {
        let (s, c) = (Nonce::random().unwrap(), Nonce::random().unwrap());
        let p = prove("t", Role::Client, &s, &c);
        assert!(verify("t", Role::Client, &s, &c, &p));
        assert!(!verify("u", Role::Client, &s, &c, &p));
        assert!(!verify("t", Role::Server, &s, &c, &p));
        assert!(!verify("t", Role::Client, &c, &s, &p));
        let other = Nonce::random().unwrap();
        assert!(!verify("t", Role::Client, &other, &c, &p));
        assert!(!verify("t", Role::Client, &s, &other, &p));
        assert_ne!(s, other, "two random nonces differ");
        assert_eq!(s.to_string().len(), 64);
    }
}
