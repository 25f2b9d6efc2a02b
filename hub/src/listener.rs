//! The API and registry port: HTTPS with the hub's serving certificate, or
//! plain HTTP with `--insecure-http` (labs only). Each connection is its
//! own task from the first byte, so a client that stalls in its TLS
//! handshake or its request headers holds only its own connection: the
//! handshake must finish within `tls::accept::HANDSHAKE_TIMEOUT`, the headers within
//! [`HEADER_TIMEOUT`]. A plain HTTP request on the HTTPS port gets a 400
//! that says to use `https://` (as Go's servers answer it), not a reset.
//! Connections over the caps of [`ConnLimits`] (in total, per client
//! address) get its 503 or 429 and are closed.
//! On shutdown the listener stops accepting, open connections finish their
//! request and close, and [`Listener::closed`] resolves when the last one
//! is gone.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch};
use tokio_rustls::TlsAcceptor;

use crate::conn_limits::{ConnLimits, Refusal};
use crate::tls::ServingCert;
use crate::tls::accept::{HANDSHAKE_TIMEOUT, NoTls, acceptor, handshake};

/// How long a client may take to send a request's headers.
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a refused connection is read (and the data dropped) after the
/// refusal was sent, before it is closed.
const LINGER: Duration = Duration::from_secs(2);

/// The running accept loop.
#[derive(Debug)]
pub struct Listener {
    addr: SocketAddr,
    tls: bool,
    /// Closed (`recv` gives `None`) once the accept loop and every
    /// connection ended.
    done: mpsc::Receiver<()>,
}

impl Listener {
    /// Serves `app` on `listener` until `shutdown` turns true. With
    /// `serving`, only TLS.
    pub fn spawn(
        listener: TcpListener,
        app: Router,
        serving: Option<Arc<ServingCert>>,
        limits: Arc<ConnLimits>,
        shutdown: watch::Receiver<bool>,
    ) -> std::io::Result<Listener> {
        let addr = listener.local_addr()?;
        let acceptor = serving.map(|s| acceptor(s, &[b"http/1.1"]));
        let tls = acceptor.is_some();
        let (alive, done) = mpsc::channel(1);
        tokio::spawn(accept_loop(
            listener, app, acceptor, limits, shutdown, alive,
        ));
        Ok(Listener { addr, tls, done })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `https` or `http`.
    pub fn scheme(&self) -> &'static str {
        if self.tls { "https" } else { "http" }
    }

    /// Resolves when the accept loop and every connection ended.
    pub async fn closed(mut self) {
        while self.done.recv().await.is_some() {}
    }
}

async fn accept_loop(
    listener: TcpListener,
    app: Router,
    acceptor: Option<TlsAcceptor>,
    limits: Arc<ConnLimits>,
    mut shutdown: watch::Receiver<bool>,
    alive: mpsc::Sender<()>,
) {
    loop {
        let (stream, peer) = tokio::select! {
            _ = stopped(&mut shutdown) => break,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Out of file descriptors, most likely: back off.
                    tracing::warn!(error = %e, "API accept failed");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let slot = match limits.admit(peer.ip()) {
            Ok(slot) => slot,
            Err(refusal) => {
                refuse(stream, peer, refusal, acceptor.clone(), &limits);
                continue;
            }
        };
        let (app, acceptor, shutdown, alive) = (
            app.clone(),
            acceptor.clone(),
            shutdown.clone(),
            alive.clone(),
        );
        tokio::spawn(async move {
            let _alive = alive;
            let _slot = slot;
            match acceptor {
                None => serve(stream, app, peer, shutdown).await,
                Some(acceptor) => match handshake(stream, &acceptor, peer, "api").await {
                    Ok(tls) => serve(tls, app, peer, shutdown).await,
                    Err(NoTls::Plain(stream)) => refuse_plain(stream).await,
                    Err(NoTls::Gone) => {}
                },
            }
        });
    }
    // The port is closed before `Listener::closed` can resolve.
    drop(listener);
    drop(alive);
}

/// Answers a connection over a cap with its 429 or 503 (after the TLS
/// handshake, so the client can read it), or closes it at once when too
/// many refusals are being answered already.
pub(crate) fn refuse(
    stream: TcpStream,
    peer: SocketAddr,
    refusal: Refusal,
    acceptor: Option<TlsAcceptor>,
    limits: &Arc<ConnLimits>,
) {
    tracing::debug!(%peer, ?refusal, "connection over a cap");
    let Some(refusing) = limits.refusing() else {
        return;
    };
    tokio::spawn(async move {
        let _refusing = refusing;
        let (code, phrase, message) = refusal.answer();
        let body = format!("{message}\n");
        let answer = format!(
            "HTTP/1.1 {code} {phrase}\r\nContent-Type: text/plain; charset=utf-8\r\n\
             Retry-After: 1\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        match acceptor {
            None => write_and_close(stream, answer.as_bytes()).await,
            Some(acceptor) => {
                if let Ok(tls) = handshake(stream, &acceptor, peer, "api").await {
                    write_and_close(tls, answer.as_bytes()).await;
                }
            }
        }
    });
}

/// Writes `bytes`, ends the sending side, then reads and drops what the
/// client still sends for up to [`LINGER`] before closing: closing with its
/// request unread would reset the connection, and a reset can discard the
/// answer before the client reads it (a lingering close, as Go's and
/// nginx's servers do).
async fn write_and_close<S: AsyncRead + AsyncWrite + Unpin>(mut stream: S, bytes: &[u8]) {
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.write_all(bytes)).await;
    let _ = tokio::time::timeout(HANDSHAKE_TIMEOUT, stream.shutdown()).await;
    let mut sink = [0u8; 1024];
    let drain = async {
        while let Ok(n) = stream.read(&mut sink).await {
            if n == 0 {
                break;
            }
        }
    };
    let _ = tokio::time::timeout(LINGER, drain).await;
}

/// Answers a plain HTTP request on the HTTPS port.
async fn refuse_plain(stream: TcpStream) {
    let body = "Client sent an HTTP request to an HTTPS server: this hub serves its API over \
                HTTPS; use https:// (the CA is DATA_DIR/ca.crt, or run `bramble config`)\n";
    let answer = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: text/plain; charset=utf-8\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    write_and_close(stream, answer.as_bytes()).await;
}

/// Resolves once the hub stops (or whoever set the flag is gone).
pub(crate) async fn stopped(shutdown: &mut watch::Receiver<bool>) {
    let _ = shutdown.wait_for(|s| *s).await;
}

/// HTTP/1.1 on one connection until the client closes it or the hub stops.
async fn serve<I>(io: I, app: Router, peer: SocketAddr, mut shutdown: watch::Receiver<bool>)
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let svc = TowerToHyperService::new(app);
    let conn = hyper::server::conn::http1::Builder::new()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_TIMEOUT)
        .serve_connection(TokioIo::new(io), svc)
        .with_upgrades();
    tokio::pin!(conn);
    let result = tokio::select! {
        r = conn.as_mut() => r,
        _ = stopped(&mut shutdown) => {
            conn.as_mut().graceful_shutdown();
            conn.await
        }
    };
    if let Err(e) = result {
        tracing::debug!(%peer, error = %e, "API connection ended");
    }
}
