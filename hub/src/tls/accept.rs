//! The server side of a TLS connection, shared by the API/registry port and
//! the MQTT port: the hub's serving certificate, TLS 1.2 and 1.3 with
//! rustls' ring provider, a handshake that must finish within
//! [`HANDSHAKE_TIMEOUT`], and a look at the first byte so that a client
//! speaking plain text on a TLS port is told apart from a broken handshake
//! (the caller answers it in its own protocol).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

use super::ServingCert;

/// How long a client may take to finish the TLS handshake.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// The first byte of a TLS handshake record.
const TLS_HANDSHAKE: u8 = 0x16;

/// Why a connection brought no TLS stream.
#[derive(Debug)]
pub enum NoTls {
    /// The client spoke plain text first: here is its connection.
    Plain(TcpStream),
    /// It closed, stalled past the timeout, or failed the handshake.
    Gone,
}

/// A TLS acceptor with `serving`'s certificate offering `alpn`.
pub fn acceptor(serving: Arc<ServingCert>, alpn: &[&[u8]]) -> TlsAcceptor {
    let mut config = rustls::ServerConfig::builder_with_provider(bramble_trust::tls::provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default protocol versions")
        .with_no_client_auth()
        .with_cert_resolver(serving);
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    TlsAcceptor::from(Arc::new(config))
}

/// The TLS handshake of `stream`; `what` names the port in the logs.
pub async fn handshake(
    stream: TcpStream,
    acceptor: &TlsAcceptor,
    peer: SocketAddr,
    what: &'static str,
) -> Result<TlsStream<TcpStream>, NoTls> {
    let first = async {
        let mut b = [0u8; 1];
        stream.peek(&mut b).await.map(|n| (n > 0).then_some(b[0]))
    };
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, first).await {
        Ok(Ok(Some(TLS_HANDSHAKE))) => {}
        Ok(Ok(Some(_))) => {
            tracing::debug!(%peer, port = what, "plain text on the TLS port");
            return Err(NoTls::Plain(stream));
        }
        Ok(Ok(None)) | Ok(Err(_)) => return Err(NoTls::Gone),
        Err(_) => {
            tracing::debug!(%peer, port = what, "no TLS handshake within the timeout; closed");
            return Err(NoTls::Gone);
        }
    }
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
        Ok(Ok(s)) => Ok(s),
        Ok(Err(e)) => {
            tracing::debug!(%peer, port = what, error = %e, "TLS handshake failed");
            Err(NoTls::Gone)
        }
        Err(_) => {
            tracing::debug!(%peer, port = what, "TLS handshake not finished within the timeout; closed");
            Err(NoTls::Gone)
        }
    }
}
