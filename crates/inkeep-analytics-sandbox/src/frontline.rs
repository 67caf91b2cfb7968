//! What happens to every request before and after its handler: a request id, the injected
//! faults, bearer authentication, and the rendering of problem bodies.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, Method, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::problem::{PendingProblem, Problem};
use crate::state::{Fault, Shared};

/// The header that carries the request id on every answer (it is also in problem bodies).
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// Whether an operation accepts a web integration key, as the spec's operation table (generated
/// into the SDK) says: a template segment in braces matches any one segment of the path.
fn accepts_web_key(method: &Method, path: &str) -> bool {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    inkeep_analytics::generated::operations::ALL
        .iter()
        .filter(|operation| operation.http_method == method.as_str())
        .filter(|operation| {
            let template: Vec<&str> = operation.path.trim_matches('/').split('/').collect();
            template.len() == segments.len()
                && template.iter().zip(&segments).all(|(part, segment)| {
                    (part.starts_with('{') && !segment.is_empty()) || part == segment
                })
        })
        .any(|operation| operation.accepts_web_key)
}

fn authorize(
    shared: &Shared,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Result<(), Problem> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Problem::unauthorized(
            "Missing credentials: send `Authorization: Bearer <key>`",
        ));
    };
    let token = value
        .to_str()
        .ok()
        .and_then(|value| value.split_once(' '))
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case("bearer"))
        .map(|(_, token)| token.trim())
        .filter(|token| !token.is_empty())
        .ok_or_else(|| Problem::unauthorized("The Authorization header must be `Bearer <key>`"))?;
    if shared.api_keys.iter().any(|key| key == token) {
        return Ok(());
    }
    if shared.web_keys.iter().any(|key| key == token) {
        if accepts_web_key(method, path) {
            return Ok(());
        }
        return Err(Problem::forbidden(format!(
            "{method} {path} needs an API integration key: a web integration key only logs conversations, feedback and events, and gets or deletes a conversation"
        )));
    }
    Err(Problem::unauthorized("Invalid API key"))
}

/// Answers one request: faults first (as a proxy or rate limiter in front of the API would),
/// then authentication, then the operation.
pub(crate) async fn handle(
    shared: Arc<Shared>,
    router: Router,
    kill: Arc<Notify>,
    request: Request<Body>,
) -> Response {
    let request_id = shared.next_request_id();
    let path = request.uri().path().to_string();
    let plan = shared.draw_faults();
    if let Some(delay) = plan.delay {
        tokio::time::sleep(delay).await;
    }
    let response = match plan.fault {
        Some(Fault::RateLimited) => {
            Problem::too_many_requests(plan.retry_after_secs).into_response()
        }
        Some(Fault::Unavailable) => unavailable(),
        Some(Fault::BadGateway) => bad_gateway(),
        Some(Fault::DroppedConnection) => {
            // The connection task closes the socket; this request never gets an answer.
            kill.notify_one();
            return std::future::pending().await;
        }
        Some(Fault::TruncatedBody) | None => {
            match authorize(&shared, request.method(), &path, request.headers()) {
                Err(problem) => problem.into_response(),
                Ok(()) => match router.oneshot(request).await {
                    Ok(response) => response,
                    Err(never) => match never {},
                },
            }
        }
    };
    let mut response = match response.extensions().get::<PendingProblem>().cloned() {
        Some(PendingProblem(problem)) => problem.render(&request_id, &path),
        None => response,
    };
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(REQUEST_ID_HEADER, value);
    }
    if plan.fault == Some(Fault::TruncatedBody) {
        response = truncate(response).await;
    }
    response
}

fn unavailable() -> Response {
    let html = "<html>\r\n<head><title>503 Service Temporarily Unavailable</title></head>\r\n<body>\r\n<center><h1>503 Service Temporarily Unavailable</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n";
    let mut response = (StatusCode::SERVICE_UNAVAILABLE, html).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html"));
    response
}

fn bad_gateway() -> Response {
    let mut response = (StatusCode::BAD_GATEWAY, Bytes::new()).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_LENGTH, HeaderValue::from(0));
    response
}

/// Announces the full length, sends the first half of the body, then fails the body so that the
/// connection is closed mid-answer.
async fn truncate(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let announced = bytes.len().max(16);
    let sent = bytes.slice(..bytes.len() / 2);
    parts
        .headers
        .insert(header::CONTENT_LENGTH, HeaderValue::from(announced));
    let stream = futures::stream::iter([Ok::<Bytes, std::io::Error>(sent)]).chain(
        futures::stream::once(async {
            // Give the connection time to flush the part that is sent before it is cut.
            tokio::time::sleep(Duration::from_millis(50)).await;
            Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "sandbox fault: truncated body",
            ))
        }),
    );
    Response::from_parts(parts, Body::from_stream(stream))
}

#[cfg(test)]
mod tests {
    use super::accepts_web_key;
    use axum::http::Method;

    #[test]
    fn web_keys_reach_exactly_the_operations_the_spec_lists() {
        assert!(accepts_web_key(&Method::POST, "/conversations"));
        assert!(accepts_web_key(&Method::POST, "/feedback"));
        assert!(accepts_web_key(&Method::GET, "/conversations/conv_1"));
        assert!(accepts_web_key(&Method::DELETE, "/conversations/conv_1"));
        assert!(accepts_web_key(&Method::POST, "/events"));
        assert!(!accepts_web_key(&Method::GET, "/conversations"));
        assert!(!accepts_web_key(
            &Method::GET,
            "/conversations/external/zd-1"
        ));
        assert!(!accepts_web_key(&Method::GET, "/feedback"));
        assert!(!accepts_web_key(&Method::GET, "/feedback/fb_1"));
        assert!(!accepts_web_key(&Method::POST, "/query/conversations"));
    }
}
