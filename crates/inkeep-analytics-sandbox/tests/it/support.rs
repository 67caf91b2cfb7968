//! Helpers shared by the tests: starting sandboxes, building clients, raw requests.

use inkeep_analytics::Client;
use inkeep_analytics_sandbox::{Sandbox, SandboxConfig};
use serde_json::Value;

/// Unwraps a result in a test, naming what failed.
pub trait Must<T> {
    fn must(self, what: &str) -> T;
}

impl<T, E: std::fmt::Debug> Must<T> for Result<T, E> {
    fn must(self, what: &str) -> T {
        match self {
            Ok(value) => value,
            Err(error) => panic!("{what}: {error:?}"),
        }
    }
}

impl<T> Must<T> for Option<T> {
    fn must(self, what: &str) -> T {
        match self {
            Some(value) => value,
            None => panic!("{what}: nothing"),
        }
    }
}

pub async fn start() -> Sandbox {
    Sandbox::start().await.must("start a sandbox")
}

pub async fn start_with(config: SandboxConfig) -> Sandbox {
    Sandbox::start_with(config).await.must("start a sandbox")
}

pub fn client(sandbox: &Sandbox) -> Client {
    Client::builder()
        .api_key(sandbox.api_key())
        .base_url(sandbox.base_url())
        .build()
        .must("build a client")
}

/// An answer read in full: status, headers and body.
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub body: Vec<u8>,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body).must("a JSON body")
    }

    pub fn text(&self) -> String {
        String::from_utf8(self.body.clone()).must("a UTF-8 body")
    }

    pub fn header(&self, name: &str) -> Option<String> {
        self.headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string)
    }
}

/// A raw HTTP client for what the SDK checks locally (bounds, web keys) and for exact bytes.
pub struct Raw {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Raw {
    pub fn new(sandbox: &Sandbox) -> Self {
        Self::with_key(sandbox, Some(sandbox.api_key()))
    }

    pub fn with_key(sandbox: &Sandbox, key: Option<&str>) -> Self {
        Self {
            http: reqwest::Client::new(),
            base: sandbox.base_url().to_string(),
            key: key.map(str::to_string),
        }
    }

    pub async fn send(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<&str>,
    ) -> reqwest::Result<Answer> {
        let mut request = self.http.request(method, format!("{}{path}", self.base));
        if let Some(key) = &self.key {
            request = request.bearer_auth(key);
        }
        if let Some(body) = body {
            request = request
                .header("content-type", "application/json")
                .body(body.to_string());
        }
        let response = request.send().await?;
        let status = response.status().as_u16();
        let headers = response.headers().clone();
        let body = response.bytes().await?.to_vec();
        Ok(Answer {
            status,
            headers,
            body,
        })
    }

    pub async fn get(&self, path: &str) -> Answer {
        self.send(reqwest::Method::GET, path, None).await.must(path)
    }

    pub async fn post(&self, path: &str, body: &str) -> Answer {
        self.send(reqwest::Method::POST, path, Some(body))
            .await
            .must(path)
    }

    pub async fn delete(&self, path: &str) -> Answer {
        self.send(reqwest::Method::DELETE, path, None)
            .await
            .must(path)
    }
}

/// Every conversation, as the raw JSON the sandbox serves, newest first.
pub async fn all_conversations(raw: &Raw) -> Vec<Value> {
    let mut all = Vec::new();
    loop {
        let page = raw
            .get(&format!("/conversations?limit=100&offset={}", all.len()))
            .await
            .json();
        let items = page["conversations"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let done = items.len() < 100;
        all.extend(items);
        if done {
            return all;
        }
    }
}

/// Asserts that an answer is a problem+json of `status` and `code`, and returns its body.
pub fn assert_problem(answer: &Answer, status: u16, code: &str) -> Value {
    assert_eq!(answer.status, status, "status of {}", answer.text());
    assert_eq!(
        answer.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    let body = answer.json();
    assert_eq!(body["status"], status);
    assert_eq!(body["code"], code);
    assert_eq!(body["error"]["code"], code);
    assert_eq!(body["error"]["message"], body["detail"]);
    assert!(body["title"].as_str().is_some_and(|t| !t.is_empty()));
    let request_id = body["requestId"].as_str().must("a requestId");
    assert!(request_id.starts_with("req_"));
    assert_eq!(answer.header("x-request-id").as_deref(), Some(request_id));
    body
}
