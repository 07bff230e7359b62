//! The one handshake every client speaks, the generic client ([`Client::run`]) and the fleet
//! worker alike: `hello` (the protocol versions and capabilities), the token's
//! challenge–response ([`crate::auth`]), `get_cid` → `set_cid`. Each answer is awaited within
//! the handshake timeout; a refusal, a server of another protocol major, a server that does
//! not prove it knows the token end it, with the same errors whoever speaks.

use tokio::time::Instant;

use super::{Client, ClientConfig, Ignored};
use crate::auth::{self, Nonce, Role};
use crate::connection::{Connection, Parsed};
use crate::error::{Error, Result};
use crate::logging::EventLog;
use crate::protocol::{Capabilities, Message, ProtocolError, PROTOCOL_VERSION};
use tokio_util::sync::CancellationToken;

/// What a handshake is said to be in the errors of its connection.
const CTX: &str = "handshake with the server";

/// The error for a refusal from the server: its reason is the peer's text, escaped before it
/// reaches a terminal or a log.
pub(crate) fn refusal(reason: &str) -> Error {
    Error::Refused(crate::text::escape_control(reason).into_owned())
}

/// [`Error::VersionMismatch`] unless the server's protocol (`major.minor`) has our major.
fn check_version(major: u32, minor: u32) -> Result<()> {
    let (ours, our_minor) = PROTOCOL_VERSION;
    if major == ours {
        return Ok(());
    }
    Err(Error::VersionMismatch {
        ours: format!("{ours}.{our_minor}"),
        theirs: format!("{major}.{minor}"),
    })
}

/// The id of a `set_cid` line (an error if it is no number: the id goes into file names);
/// `None` for any other line.
fn set_cid(m: &Parsed) -> Option<Result<u32>> {
    match m {
        Ok(Message::SetCid(id)) => Some(Ok(*id)),
        Err(e) if e.command() == Some("set_cid") => Some(Err(Error::Protocol(e.clone()))),
        _ => None,
    }
}

/// The error for a server that sent `run_tests` before any id.
fn run_tests_early() -> Error {
    Error::Disconnected("the server sent run_tests before set_cid".into())
}

/// The error for a server that did not authenticate.
fn unproven(why: String) -> Error {
    Error::Protocol(ProtocolError::Auth(why))
}

impl Client {
    /// Sends `hello`, `get_cid`, `ready`; returns the id once `run_tests` arrived, and whether
    /// the server answered the `hello` (a loadmon server: loadmon's own optional lines may go
    /// to it). With a token, the `hello` exchange and the challenge–response come first
    /// ([`Handshake::hello`]).
    pub(super) async fn handshake(
        &self,
        conn: &mut Connection,
        log: &EventLog,
    ) -> Result<(u32, bool)> {
        // Lines from the server that are ignored are logged within a budget.
        let mut ignored = Ignored::new(log);
        let mut ignore = |p: &Parsed| ignored.parsed(p);
        let mut handshake = Handshake::new(self, log, "client", &mut ignore);
        let id = handshake.generic(conn).await?;
        Ok((id, handshake.answered_hello))
    }
}

/// One handshake of `client` on a connection: what it awaits, how long, and where the lines
/// it does not await go.
pub(crate) struct Handshake<'a> {
    config: &'a ClientConfig,
    cancel: &'a CancellationToken,
    log: &'a EventLog,
    /// Who waits, in the errors (`client`, `worker`).
    who: &'static str,
    /// Lines from the server that were not awaited.
    ignored: &'a mut (dyn FnMut(&Parsed) + Send + 'a),
    /// Whether the server answered `hello` (a loadmon server; a seed server answers nothing).
    pub(crate) answered_hello: bool,
}

impl<'a> Handshake<'a> {
    /// A handshake of `client` (its settings and its cancel token), logging to `log`; `who`
    /// names the waiting side in errors, lines that are not awaited go to `ignored`.
    pub(crate) fn new(
        client: &'a Client,
        log: &'a EventLog,
        who: &'static str,
        ignored: &'a mut (dyn FnMut(&Parsed) + Send + 'a),
    ) -> Self {
        Handshake {
            config: &client.config,
            cancel: &client.cancel,
            log,
            who,
            ignored,
            answered_hello: false,
        }
    }

    /// The generic client's: `hello` (awaited, then the challenge–response, with a token;
    /// without one nothing waits for its answer: a seed server sends none), `get_cid`,
    /// `ready`; returns the id once `run_tests` arrived.
    async fn generic(&mut self, conn: &mut Connection) -> Result<u32> {
        if self.config.token.is_some() {
            match self.hello(conn, Capabilities::NONE).await {
                Ok(_) => {}
                // A seed server answers nothing to hello (and knows no token).
                Err(Error::Timeout(m)) if m.starts_with("no answer to hello") => {
                    return Err(Error::Timeout(format!(
                        "{m}: a client with a token needs a loadmon server (a seed server \
                         takes no token)"
                    )))
                }
                Err(e) => return Err(e),
            }
        } else {
            let (major, minor) = PROTOCOL_VERSION;
            conn.feed(&Message::Hello {
                major,
                minor,
                caps: Capabilities::NONE,
            });
        }
        conn.feed(&Message::GetCid);
        conn.feed(&Message::Ready);
        conn.flush().await.map_err(|e| Error::from_frame(e, CTX))?;
        self.wait_for_run(conn).await
    }

    /// Awaits `set_cid` within the handshake timeout, then `run_tests` for as long as the
    /// server keeps the connection (a fleet server withholds it until its fleet is ready);
    /// a `hello` on the way is checked. Returns the id.
    async fn wait_for_run(&mut self, conn: &mut Connection) -> Result<u32> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        let mut client_id = None;
        loop {
            // Until the id; then run_tests may take as long as the fleet needs.
            let bound = client_id.is_none().then_some(deadline);
            let Some(parsed) = self.read_line(conn, "set_cid", bound).await? else {
                return Err(Error::Disconnected(
                    "the server closed the connection during the handshake".into(),
                ));
            };
            match parsed {
                Ok(Message::Hello { major, minor, .. }) => {
                    check_version(major, minor)?;
                    self.answered_hello = true;
                    self.log
                        .debug(|| format!("server speaks protocol {major}.{minor}"));
                }
                Ok(Message::RunTests) => {
                    let id = client_id.ok_or_else(run_tests_early)?;
                    self.log.info("Test run request received from server");
                    return Ok(id);
                }
                other => match set_cid(&other) {
                    Some(id) => {
                        let id = id?;
                        self.log
                            .info(format!("Client id received from server: {id}"));
                        client_id = Some(id);
                    }
                    None => (self.ignored)(&other),
                },
            }
        }
    }

    /// Sends `hello` with `caps` (and `auth` with a token) and waits for the server's answer;
    /// returns the capabilities the server answered with. With a token, then authenticates
    /// both ways before anything else ([`Handshake::authenticate`]).
    ///
    /// # Errors
    /// [`Error::Protocol`] ([`ProtocolError::Auth`]) if the server does not prove it knows
    /// the token; [`Error::Refused`] for a refusal (a wrong token);
    /// [`Error::VersionMismatch`]; [`Error::Timeout`] if an answer does not come within the
    /// handshake timeout; as [`Client::run`] for the connection.
    pub(crate) async fn hello(
        &mut self,
        conn: &mut Connection,
        caps: Capabilities,
    ) -> Result<Capabilities> {
        let (major, minor) = PROTOCOL_VERSION;
        let token = self.config.token.as_deref();
        let caps = match token {
            Some(_) => caps.union(Capabilities::AUTH),
            None => caps,
        };
        conn.send(&Message::Hello { major, minor, caps })
            .await
            .map_err(|e| Error::from_frame(e, CTX))?;
        let theirs = self
            .next_line(conn, "answer to hello", |m| match m {
                Ok(Message::Hello { major, minor, caps }) => {
                    Some(check_version(*major, *minor).map(|()| *caps))
                }
                _ => None,
            })
            .await?;
        self.answered_hello = true;
        if token.is_some() {
            self.authenticate(conn, theirs).await?;
        }
        Ok(theirs)
    }

    /// With a token, after the server's `hello` (which offered `theirs`): answers the server's
    /// challenge and checks the server's proof, or, to a server that offers no
    /// challenge–response and only when [`ClientConfig::allow_clear_token`] says so, sends
    /// the token in clear.
    async fn authenticate(&mut self, conn: &mut Connection, theirs: Capabilities) -> Result<()> {
        let config = self.config;
        let Some(token) = config.token.as_deref() else {
            return Ok(());
        };
        if theirs.contains(Capabilities::AUTH) {
            return self.challenge_response(conn, token).await;
        }
        if config.allow_clear_token {
            // An older loadmon server: it wants the token itself.
            return conn
                .send(&Message::Token(token.to_string()))
                .await
                .map_err(|e| Error::from_frame(e, CTX));
        }
        Err(unproven(format!(
            "the server at {}:{} offers no challenge-response (a loadmon from before it, or a \
             server without a token), so it cannot prove it knows the token; \
             --allow-clear-token (allow_clear_token) sends the token in clear to such a server",
            config.host, config.port
        )))
    }

    /// The token's challenge–response ([`crate::auth`]): the server's challenge, this
    /// client's proof and nonce, the server's proof. Nothing the server says before its proof
    /// is taken: not a plan, not an id.
    async fn challenge_response(&mut self, conn: &mut Connection, token: &str) -> Result<()> {
        let addr = format!("{}:{}", self.config.host, self.config.port);
        let early = |m: &Message| -> Option<Error> {
            matches!(
                m,
                Message::Plan { .. } | Message::SetCid(_) | Message::RunTests
            )
            .then(|| {
                unproven(format!(
                    "the server at {addr} sent {} before proving it knows the token",
                    m.command()
                ))
            })
        };
        let server_nonce = self
            .next_line(conn, "challenge", |m| match m {
                Ok(Message::Challenge(n)) => Some(Ok(*n)),
                Ok(other) => early(other).map(Err),
                Err(e) if e.command() == Some("challenge") => Some(Err(Error::Protocol(e.clone()))),
                Err(_) => None,
            })
            .await?;
        let client_nonce = Nonce::random()?;
        conn.send(&Message::Auth {
            nonce: client_nonce,
            proof: auth::prove(token, Role::Client, &server_nonce, &client_nonce),
        })
        .await
        .map_err(|e| Error::from_frame(e, CTX))?;
        let proof = self
            .next_line(conn, "auth_ok", |m| match m {
                Ok(Message::AuthOk(p)) => Some(Ok(Some(*p))),
                Ok(other) => early(other).map(Err),
                Err(e) if e.command() == Some("auth_ok") => Some(Ok(None)),
                Err(_) => None,
            })
            .await?;
        match proof {
            Some(p) if auth::verify(token, Role::Server, &server_nonce, &client_nonce, &p) => {
                Ok(())
            }
            _ => Err(unproven(format!(
                "the server at {addr} did not prove it knows the token (its auth_ok does not \
                 match): it is not the server with this token"
            ))),
        }
    }

    /// `get_cid`; returns the id of the server's `set_cid`.
    pub(crate) async fn take_id(&mut self, conn: &mut Connection) -> Result<u32> {
        conn.send(&Message::GetCid)
            .await
            .map_err(|e| Error::from_frame(e, CTX))?;
        let id = self
            .next_line(conn, "set_cid", |m| match m {
                Ok(Message::RunTests) => Some(Err(run_tests_early())),
                other => set_cid(other),
            })
            .await?;
        self.log
            .info(format!("Client id received from server: {id}"));
        Ok(id)
    }

    /// Reads lines until `want` takes one (`Some`), within the handshake timeout; a refusal
    /// and the end of the connection are errors, other lines go to `ignored`.
    pub(crate) async fn next_line<T>(
        &mut self,
        conn: &mut Connection,
        what: &str,
        want: impl Fn(&Parsed) -> Option<Result<T>>,
    ) -> Result<T> {
        let deadline = Instant::now() + self.config.handshake_timeout;
        loop {
            let Some(parsed) = self.read_line(conn, what, Some(deadline)).await? else {
                return Err(Error::Disconnected(format!(
                    "the server closed the connection while the {} waited for {what}",
                    self.who
                )));
            };
            if let Some(r) = want(&parsed) {
                return r;
            }
            (self.ignored)(&parsed);
        }
    }

    /// The next line from the server (`None` once it closed the connection), awaited until
    /// `deadline` if any. A refusal is an error, as are a cancel and the deadline (no `what`
    /// within the handshake timeout).
    async fn read_line(
        &mut self,
        conn: &mut Connection,
        what: &str,
        deadline: Option<Instant>,
    ) -> Result<Option<Parsed>> {
        let parsed = tokio::select! {
            _ = self.cancel.cancelled() => {
                return Err(Error::Interrupted("during the handshake".into()));
            }
            _ = tokio::time::sleep_until(deadline.unwrap_or_else(Instant::now)), if deadline.is_some() => {
                return Err(Error::Timeout(format!(
                    "no {what} from the server within {:.1} s",
                    self.config.handshake_timeout.as_secs_f64()
                )));
            }
            m = conn.read_message() => m.map_err(|e| Error::from_frame(e, CTX))?,
        };
        if let Some(Ok(Message::Refused(reason))) = &parsed {
            return Err(refusal(reason));
        }
        Ok(parsed)
    }
}
