//! A minimal in-memory server on loopback that hands out pre-rendered pages, so that serving costs
//! the contenders' machine as little as possible and every contender reads the same bytes.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use bytes::Bytes;
use serde::Deserialize;

use crate::data::PAGE_SIZE;

/// The key every contender sends.
pub const API_KEY: &str = "bench-key";

/// The pages the server hands out, page `i` for `offset = 100·i`; the last page of each is empty.
#[derive(Debug, Default)]
pub struct Pages {
    /// `GET /conversations` pages.
    pub conversations: Vec<Bytes>,
    /// `GET /feedback` pages.
    pub feedback: Vec<Bytes>,
}

#[derive(Deserialize)]
struct Paging {
    limit: Option<usize>,
    offset: Option<usize>,
}

/// A running server; it stops when dropped.
pub struct PageServer {
    address: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl PageServer {
    /// Serves `pages` on an ephemeral port of 127.0.0.1, on one thread of its own.
    pub fn start(pages: Pages) -> std::io::Result<Self> {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("bench-server")
            .enable_all()
            .build()?;
        let listener = runtime.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
        let address = listener.local_addr()?;
        let app = Router::new()
            .route("/conversations", get(conversations))
            .route("/feedback", get(feedback))
            .with_state(Arc::new(pages));
        runtime.spawn(async move {
            // A server error ends the benchmark's requests, which then report it.
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            address,
            runtime: Some(runtime),
        })
    }

    /// The base URL to give contenders.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.address)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.shutdown_background();
        }
    }
}

fn page(pages: &[Bytes], headers: &HeaderMap, paging: &Paging) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|value| value == format!("Bearer {API_KEY}"));
    if !authorized {
        return (StatusCode::UNAUTHORIZED, "unauthorized").into_response();
    }
    let limit = paging.limit.unwrap_or(PAGE_SIZE);
    let offset = paging.offset.unwrap_or(0);
    if limit != PAGE_SIZE || !offset.is_multiple_of(PAGE_SIZE) {
        return (
            StatusCode::BAD_REQUEST,
            "the benchmark server serves pages of 100 at multiples of 100",
        )
            .into_response();
    }
    let index = (offset / PAGE_SIZE).min(pages.len().saturating_sub(1));
    match pages.get(index) {
        Some(body) => ([(header::CONTENT_TYPE, "application/json")], body.clone()).into_response(),
        None => (StatusCode::NOT_FOUND, "no pages").into_response(),
    }
}

async fn conversations(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    Query(paging): Query<Paging>,
) -> Response {
    page(&pages.conversations, &headers, &paging)
}

async fn feedback(
    State(pages): State<Arc<Pages>>,
    headers: HeaderMap,
    Query(paging): Query<Paging>,
) -> Response {
    page(&pages.feedback, &headers, &paging)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data;
    use futures::TryStreamExt;

    #[test]
    fn the_sdk_reads_every_record_once_and_a_wrong_key_is_refused() {
        let records = data::conversations(9, 250);
        let server = PageServer::start(Pages {
            conversations: data::conversation_pages(&records),
            feedback: data::feedback_pages(&[], &[]),
        })
        .expect("the server starts on 127.0.0.1");
        let runtime = tokio::runtime::Runtime::new().expect("a runtime");
        let client = |key: &str| {
            inkeep_analytics::Client::builder()
                .api_key(key)
                .base_url(server.base_url())
                .max_retries(0)
                .build()
                .expect("a client")
        };
        let ids: Vec<String> = runtime
            .block_on(
                client(API_KEY)
                    .list_conversations()
                    .items()
                    .map_ok(|conversation| conversation.id().unwrap_or_default().to_string())
                    .try_collect(),
            )
            .expect("every page is served");
        assert_eq!(ids.len(), 250);
        assert_eq!(
            ids.iter().collect::<std::collections::HashSet<_>>().len(),
            250
        );
        let refused = runtime.block_on(client("sk-wrong").list_conversations().send());
        assert_eq!(
            refused
                .err()
                .and_then(|error| error.as_api().map(|api| api.status.as_u16())),
            Some(401)
        );
    }
}
