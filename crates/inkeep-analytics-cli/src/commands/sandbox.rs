//! `sandbox serve`, and the sandbox `--sandbox` starts for one command.

use inkeep_analytics::Client;

use crate::cli::GlobalOptions;
use crate::failure::Failure;

/// The sandbox started for `--sandbox`, kept alive until the command ends.
pub type SandboxGuard = Option<inkeep_analytics_sandbox::Sandbox>;

/// The client the command line asks for: the API with the given key, or a sandbox started now.
pub async fn connect(global: &GlobalOptions) -> Result<(Client, SandboxGuard), Failure> {
    let mut builder = Client::builder();
    let mut sandbox = None;
    if global.sandbox {
        let started = inkeep_analytics_sandbox::Sandbox::start()
            .await
            .map_err(|error| Failure::Usage(format!("cannot start the sandbox: {error}")))?;
        tracing::info!(
            base_url = started.base_url(),
            "started the sandbox with demo data"
        );
        builder = builder
            .api_key(started.api_key())
            .base_url(started.base_url());
        sandbox = Some(started);
    } else {
        let Some(key) = global.api_key.as_deref() else {
            return Err(Failure::Usage(format!(
                "no API key: pass --api-key, set {}, or try --sandbox",
                inkeep_analytics::config::ENV_API_KEY
            )));
        };
        builder = builder.api_key(key);
        if let Some(base_url) = global
            .base_url
            .as_deref()
            .filter(|url| !url.trim().is_empty())
        {
            builder = builder.base_url(base_url);
        }
    }
    let client = builder
        .timeout(global.timeout.0)
        .connect_timeout(global.connect_timeout.0)
        .max_retries(global.retries)
        .max_concurrency(global.max_concurrency)
        .build()
        .map_err(Failure::api("configuring the client"))?;
    Ok((client, sandbox))
}

/// The client for a long job (an export, a listing read to its end): each request retries for
/// `--retry-for` rather than a count of attempts, so that one page that meets a burst of faults
/// does not end a job of hundreds; a `--retries` given on the command line bounds it as well.
pub fn for_long_job(global: &GlobalOptions, client: &Client) -> Client {
    let mut policy = inkeep_analytics::config::RetryPolicy {
        initial_backoff: client.retry_policy().initial_backoff,
        max_backoff: client.retry_policy().max_backoff,
        ..inkeep_analytics::config::RetryPolicy::for_long_jobs(global.retry_for.0)
    };
    if global.retries_given {
        policy.max_retries = global.retries;
    }
    client.with_retry_policy(policy)
}

/// `sandbox serve`: serves the sandbox on 127.0.0.1 until Ctrl-C.
pub async fn serve(
    global: &GlobalOptions,
    port: u16,
    seed: u64,
    conversations: usize,
) -> Result<(), Failure> {
    let config = inkeep_analytics_sandbox::SandboxConfig {
        seed,
        conversations,
        ..Default::default()
    };
    let api_key = config.api_keys.first().cloned().unwrap_or_default();
    let web_key = config.web_keys.first().cloned().unwrap_or_default();
    let address = std::net::SocketAddr::from(([127, 0, 0, 1], port));
    // Bind first and announce the address actually bound: with `--port 0` only the bound socket
    // knows which port was picked, and nothing is announced for a port that could not be had.
    let sandbox = inkeep_analytics_sandbox::Sandbox::start_on(config, address)
        .await
        .map_err(|error| {
            Failure::Usage(format!("cannot serve the sandbox on {address}: {error}"))
        })?;
    if !global.quiet {
        eprintln!(
            "sandbox listening on {} (API key {api_key:?}, web integration key {web_key:?}); Ctrl-C stops it",
            sandbox.base_url(),
        );
    }
    let _ = tokio::signal::ctrl_c().await;
    sandbox
        .shutdown()
        .await
        .map_err(|error| Failure::Usage(format!("cannot stop the sandbox: {error}")))
}
