//! `latchkey-bench-bare`: the physical limit of the HTTP part. A hyper HTTP/1.1 server that does
//! no work: every request is answered 200 with a token-response-shaped JSON body of a given size
//! and the headers a token endpoint sends.

use std::convert::Infallible;
use std::net::SocketAddr;

use bytes::Bytes;
use clap::Parser;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::header::{self, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;

#[derive(Parser)]
#[command(
    name = "latchkey-bench-bare",
    about = "A bare HTTP server for the benchmark's limit"
)]
struct Args {
    /// Address to listen on (loopback).
    #[arg(long, default_value = "127.0.0.1:0")]
    addr: SocketAddr,
    /// Size of the JSON body, in bytes (use the size of the server's token response).
    #[arg(long, default_value_t = 180)]
    body_bytes: usize,
    /// Runtime worker threads.
    #[arg(long, default_value_t = 2)]
    threads: usize,
}

/// `{"access_token":"xxxx…","expires_in":3599,"scope":"","token_type":"bearer"}` padded to `size`.
fn token_body(size: usize) -> Bytes {
    let prefix = r#"{"access_token":""#;
    let suffix = r#"","expires_in":3599,"scope":"","token_type":"bearer"}"#;
    let filler = size.saturating_sub(prefix.len() + suffix.len());
    Bytes::from(format!("{prefix}{}{suffix}", "x".repeat(filler)))
}

fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    if !args.addr.ip().is_loopback() {
        anyhow::bail!("listen on a loopback address only");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads.max(1))
        .enable_all()
        .build()?;
    runtime.block_on(serve(args))
}

async fn serve(args: Args) -> anyhow::Result<()> {
    let listener = TcpListener::bind(args.addr).await?;
    let body = token_body(args.body_bytes);
    println!(
        "latchkey-bench-bare listening on http://{} ({} byte body)",
        listener.local_addr()?,
        body.len()
    );
    let shutdown = shutdown_signal();
    tokio::pin!(shutdown);
    loop {
        let (stream, _) = tokio::select! {
            accepted = listener.accept() => accepted?,
            () = &mut shutdown => return Ok(()),
        };
        stream.set_nodelay(true)?;
        let body = body.clone();
        tokio::spawn(async move {
            let service = service_fn(move |_request: Request<Incoming>| {
                let body = body.clone();
                async move {
                    let mut response = Response::new(Full::new(body));
                    let headers = response.headers_mut();
                    headers.insert(
                        header::CONTENT_TYPE,
                        HeaderValue::from_static("application/json"),
                    );
                    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
                    headers.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
                    Ok::<_, Infallible>(response)
                }
            });
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service)
                .await;
        });
    }
}

async fn shutdown_signal() {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {},
        _ = tokio::signal::ctrl_c() => {},
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn body_has_requested_size() {
        assert_eq!(super::token_body(300).len(), 300);
        assert!(serde_json::from_slice::<serde_json::Value>(&super::token_body(300)).is_ok());
    }
}
