//! The TCP connector every outbound HTTP(S) call goes through: resolve,
//! check each address against the [`EgressPolicy`], connect to a checked
//! address. TLS wraps this connector, so the certificate is still checked
//! against the name the URL gave.

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::Uri;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tower::{Service, ServiceExt as _};

use super::{EgressPolicy, Refused};

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Connects only where the policy allows.
#[derive(Clone, Debug)]
pub struct EgressConnector {
    tcp: HttpConnector,
    policy: Arc<EgressPolicy>,
}

impl EgressConnector {
    /// `tcp` makes the connections (its timeouts and socket options
    /// apply); it is only ever given addresses, never names.
    pub fn new(tcp: HttpConnector, policy: Arc<EgressPolicy>) -> EgressConnector {
        EgressConnector { tcp, policy }
    }
}

/// The host (without IPv6 brackets) and port a URI reaches.
pub fn host_port(uri: &Uri) -> Option<(String, u16)> {
    let host = uri.host()?.trim_matches(['[', ']']).to_owned();
    let port = uri.port_u16().unwrap_or(match uri.scheme_str() {
        Some("https") => 443,
        _ => 80,
    });
    Some((host, port))
}

/// Every address `host` stands for, each allowed by `policy`: one refused
/// address refuses the destination, since a name that resolves to a
/// private address beside public ones is how rebinding attacks look.
pub async fn resolve(
    policy: &EgressPolicy,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, BoxError> {
    let addrs: Vec<SocketAddr> = match host.parse::<IpAddr>() {
        Ok(ip) => vec![SocketAddr::new(ip, port)],
        Err(_) => tokio::net::lookup_host((host, port))
            .await
            .map_err(|e| format!("`{host}` does not resolve: {e}"))?
            .collect(),
    };
    if addrs.is_empty() {
        return Err(format!("`{host}` resolves to no address").into());
    }
    for addr in &addrs {
        policy
            .check(host, *addr)
            .map_err(|refused: Refused| Box::new(refused) as BoxError)?;
    }
    Ok(addrs)
}

impl Service<Uri> for EgressConnector {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, BoxError>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), BoxError>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let tcp = self.tcp.clone();
        let policy = self.policy.clone();
        Box::pin(async move {
            let (host, port) = host_port(&dst).ok_or_else(|| format!("`{dst}` names no host"))?;
            let addrs = resolve(&policy, &host, port).await?;
            let mut last: Option<BoxError> = None;
            for addr in addrs {
                let checked: Uri = format!("http://{addr}/").parse()?;
                match tcp.clone().oneshot(checked).await {
                    Ok(io) => return Ok(io),
                    Err(e) => last = Some(Box::new(e)),
                }
            }
            Err(last.unwrap_or_else(|| "no address to connect to".into()))
        })
    }
}

/// The refusal behind a failed connection, if the policy refused it.
pub fn refusal<'e>(error: &'e (dyn std::error::Error + 'static)) -> Option<&'e Refused> {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if let Some(refused) = e.downcast_ref::<Refused>() {
            return Some(refused);
        }
        cause = e.source();
    }
    None
}
