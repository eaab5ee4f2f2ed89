//! The platform's I/O seams, implemented on tokio: blocking work (password hashing) on the
//! blocking pool, and DNS TXT lookups for domain verification.

use std::net::SocketAddr;
use std::time::Duration;

use async_trait::async_trait;
use hickory_resolver::TokioResolver;
use hickory_resolver::config::{NameServerConfig, ResolverConfig, ResolverOpts};
use hickory_resolver::name_server::TokioConnectionProvider;
use hickory_resolver::proto::xfer::Protocol;
use latchkey_core::platform::dns::TxtResolver;
use latchkey_core::platform::password::{BlockingExecutor, BlockingJob};

/// Runs blocking jobs with `tokio::task::spawn_blocking`.
#[derive(Debug, Default, Clone, Copy)]
pub struct TokioBlocking;

#[async_trait]
impl BlockingExecutor for TokioBlocking {
    async fn run(&self, job: BlockingJob) {
        if let Err(e) = tokio::task::spawn_blocking(job).await {
            tracing::error!(error = %e, "a blocking job failed");
        }
    }
}

/// TXT lookups through hickory, against a configured server or the system's resolvers.
pub struct DnsResolver(TokioResolver);

impl std::fmt::Debug for DnsResolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("DnsResolver")
    }
}

impl DnsResolver {
    /// A resolver asking `server` (`IP:PORT`), or the system's resolvers when `None`.
    pub fn new(server: Option<SocketAddr>) -> Result<Self, String> {
        let builder = match server {
            Some(addr) => {
                let mut config = ResolverConfig::new();
                config.add_name_server(NameServerConfig::new(addr, Protocol::Udp));
                TokioResolver::builder_with_config(config, TokioConnectionProvider::default())
            }
            None => TokioResolver::builder_tokio().map_err(|e| e.to_string())?,
        };
        let mut opts = ResolverOpts::default();
        opts.timeout = Duration::from_secs(3);
        opts.attempts = 2;
        // Verification asks again after the developer publishes the record: never cache.
        opts.cache_size = 0;
        Ok(Self(builder.with_options(opts).build()))
    }
}

#[async_trait]
impl TxtResolver for DnsResolver {
    async fn txt(&self, name: &str) -> Result<Vec<String>, String> {
        match self
            .0
            .txt_lookup(format!("{}.", name.trim_end_matches('.')))
            .await
        {
            Ok(lookup) => Ok(lookup
                .iter()
                .map(|txt| {
                    txt.txt_data()
                        .iter()
                        .map(|part| String::from_utf8_lossy(part).into_owned())
                        .collect::<String>()
                })
                .collect()),
            Err(e) if e.is_no_records_found() || e.is_nx_domain() => Ok(vec![]),
            Err(e) => Err(e.to_string()),
        }
    }
}
