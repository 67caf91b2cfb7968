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
use inkeep_analytics::generated::operations::{self, Operation};
use tokio::sync::Notify;
use tower::ServiceExt;

use crate::config::RateLimit;
use crate::problem::{PendingProblem, Problem};
use crate::state::{Fault, Shared};

/// The header that carries the request id on every answer (it is also in problem bodies).
pub(crate) const REQUEST_ID_HEADER: &str = "x-request-id";

/// The operation of the spec that answers `method path`, looked up in the SDK's generated
/// operation table (the one home of which key may call what). A template segment such as `{id}`
/// matches any one segment; when several templates match, the one with the most literal segments
/// wins, as a router would pick it.
pub(crate) fn operation_for(method: &Method, path: &str) -> Option<&'static Operation> {
    let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
    operations::ALL
        .iter()
        .filter(|operation| operation.http_method == method.as_str())
        .filter_map(|operation| {
            let template: Vec<&str> = operation.path.trim_matches('/').split('/').collect();
            if template.len() != segments.len() {
                return None;
            }
            let mut literals = 0usize;
            for (expected, actual) in template.iter().zip(&segments) {
                if expected.starts_with('{') && expected.ends_with('}') {
                    if actual.is_empty() {
                        return None;
                    }
                } else if expected == actual {
                    literals += 1;
                } else {
                    return None;
                }
            }
            Some((literals, operation))
        })
        .max_by_key(|(literals, _)| *literals)
        .map(|(_, operation)| operation)
}

/// Whether a web integration key may call `method path`: what the spec's security says of its
/// operation; a path that is no operation is refused as well.
fn accepts_web_key(method: &Method, path: &str) -> bool {
    operation_for(method, path).is_some_and(|operation| operation.accepts_web_key)
}

/// The operations a web key may call, for the `403` that names them.
fn web_key_operations() -> String {
    let ids: Vec<&str> = operations::ALL
        .iter()
        .filter(|operation| operation.accepts_web_key)
        .map(|operation| operation.id)
        .collect();
    ids.join(", ")
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
            "{method} {path} needs an API integration key: a web integration key may only call {}",
            web_key_operations()
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
    if let Some(limit) = plan.stated_rate_limit
        && let Ok(value) = HeaderValue::from_str(&rate_limit_policy(limit))
    {
        response.headers_mut().insert("ratelimit-policy", value);
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

/// A rate limit as the IETF draft's `RateLimit-Policy` states it: a whole quota per window, the
/// window one second for a whole rate, else a minute.
fn rate_limit_policy(limit: RateLimit) -> String {
    let window: u32 = if limit.per_second.fract() == 0.0 {
        1
    } else {
        60
    };
    let quota = (limit.per_second * f64::from(window)).round().max(1.0);
    format!("\"sandbox\";q={quota};w={window}")
}

#[cfg(test)]
mod tests {
    use super::{accepts_web_key, operation_for};
    use axum::http::Method;
    use inkeep_analytics::generated::operations;

    /// A concrete path for a template: every parameter becomes `x1`.
    fn concrete(template: &str) -> String {
        template
            .split('/')
            .map(|segment| {
                if segment.starts_with('{') {
                    "x1"
                } else {
                    segment
                }
            })
            .collect::<Vec<_>>()
            .join("/")
    }

    #[test]
    fn every_operation_of_the_table_is_found_by_its_method_and_path() {
        for operation in operations::ALL {
            let method = Method::from_bytes(operation.http_method.as_bytes())
                .unwrap_or_else(|_| panic!("{} has an HTTP method", operation.id));
            let found = operation_for(&method, &concrete(operation.path));
            assert_eq!(
                found.map(|o| o.id),
                Some(operation.id),
                "{}",
                operation.path
            );
            assert_eq!(
                accepts_web_key(&method, &concrete(operation.path)),
                operation.accepts_web_key,
                "{}",
                operation.id
            );
        }
    }

    #[test]
    fn literal_segments_win_over_parameters_and_unknown_paths_take_no_web_key() {
        let by_external = operation_for(&Method::GET, "/conversations/external/zd-1");
        assert_eq!(
            by_external.map(|o| o.id),
            Some("getConversationByExternalId")
        );
        assert!(!accepts_web_key(
            &Method::GET,
            "/conversations/external/zd-1"
        ));
        assert!(accepts_web_key(&Method::GET, "/conversations/conv_1"));
        assert!(operation_for(&Method::GET, "/nowhere").is_none());
        assert!(!accepts_web_key(&Method::GET, "/nowhere"));
        assert!(!accepts_web_key(&Method::PATCH, "/conversations/conv_1"));
    }
}
