//! A bound on how much of a JSON response the client reads, so that a broken or hostile server cannot exhaust memory.
//!
//! progenitor reads a success body whole inside the generated method, so the bound is put on the
//! body itself: the `exec` hook wraps every JSON response's body in `http_body_util`'s [`Limited`],
//! which fails as soon as more bytes than the limit have arrived, or replaces it with a body that
//! fails at once when `Content-Length` already says so.
//! CSV exports are streamed to the caller chunk by chunk and never held whole, so they are not bounded.
//!
//! The body the limit counts is the decompressed one (the `exec` hook decodes gzip, brotli and zstd
//! before it puts the limit on, and drops `Content-Length`, which counts compressed bytes; a
//! listing's page held compressed is limited again as it is decoded, see [`super::compression`]), so a
//! small compressed body that expands without end (a compression bomb) is refused as soon as its
//! expansion passes the limit, having held no more than the limit in memory.

use bytes::Bytes;
use http_body::Frame;
use http_body_util::{BodyExt as _, LengthLimitError, Limited, StreamBody};
use reqwest::ResponseBuilderExt;

use super::BoxError;
use crate::error::ResponseTooLarge;

/// The largest JSON response body read by default: 256 MiB, far above any page the API sends
/// (100 conversations are about 1 MB) and far below what would exhaust a machine's memory.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 256 * 1024 * 1024;

/// How deep JSON may nest: serde_json refuses deeper documents while decoding typed values, and
/// raw records, which it only skips over, are held to the same bound.
pub(crate) const MAX_JSON_DEPTH: usize = 128;

/// Refuses JSON that nests arrays and objects deeper than [`MAX_JSON_DEPTH`], in one pass over the
/// bytes and without recursion. Records kept raw are not parsed into values here, but a caller that
/// parses them later must not meet a document that would exhaust its stack.
pub(crate) fn check_nesting(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut depth = 0usize;
    let mut at = 0usize;
    while let Some(&byte) = body.get(at) {
        match byte {
            // Strings are most of a page's bytes: jump to their end instead of stepping through.
            b'"' => {
                at += 1;
                loop {
                    match memchr::memchr2(b'"', b'\\', &body[at.min(body.len())..]) {
                        Some(found) if body[at + found] == b'\\' => at += found + 2,
                        Some(found) => {
                            at += found;
                            break;
                        }
                        None => return Ok(()),
                    }
                }
            }
            b'[' | b'{' => {
                depth += 1;
                if depth > MAX_JSON_DEPTH {
                    return Err(serde::de::Error::custom(format!(
                        "the JSON nests deeper than {MAX_JSON_DEPTH} levels at byte {at}"
                    )));
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
        at += 1;
    }
    Ok(())
}

/// Puts a limit of `limit` bytes on a response's body. A success whose `Content-Length` is over
/// the limit gets a body that fails before reading anything; an error status keeps its body, bounded
/// while streaming, so that its status still reaches the caller.
pub(crate) fn limit_response(response: reqwest::Response, limit: u64) -> reqwest::Response {
    let refuse = response.status().is_success()
        && response
            .content_length()
            .is_some_and(|length| length > limit);
    map_body(response, |inner| {
        let too_large = move || -> BoxError { Box::new(ResponseTooLarge { limit }) };
        if refuse {
            // Dropping the body unread closes the connection instead of waiting for bytes we refuse.
            let refused = [Err::<Frame<Bytes>, BoxError>(too_large())];
            return reqwest::Body::wrap(StreamBody::new(futures::stream::iter(refused)));
        }
        // `Limited` counts in `usize`; a limit past it cannot be reached in memory anyway.
        let bounded = Limited::new(inner, usize::try_from(limit).unwrap_or(usize::MAX));
        reqwest::Body::wrap(bounded.map_err(move |error| {
            if error.is::<LengthLimitError>() {
                too_large()
            } else {
                error
            }
        }))
    })
}

/// The same response around another body, made from its own by `wrap`.
pub(crate) fn map_body(
    response: reqwest::Response,
    wrap: impl FnOnce(reqwest::Body) -> reqwest::Body,
) -> reqwest::Response {
    map_parts(response, |_, body| wrap(body))
}

/// The same response around another body, made from its own by `wrap`, which may also change
/// the status line and headers.
pub(crate) fn map_parts(
    response: reqwest::Response,
    wrap: impl FnOnce(&mut http::response::Parts, reqwest::Body) -> reqwest::Body,
) -> reqwest::Response {
    let url = response.url().clone();
    let (mut parts, body) = http::Response::<reqwest::Body>::from(response).into_parts();
    let body = wrap(&mut parts, body);
    let mut wrapped = http::Response::from_parts(parts, body);
    // The URL travels in an extension only `reqwest` can name; a builder puts it there.
    if let Some(extensions) = http::Response::builder().url(url).extensions_ref() {
        wrapped.extensions_mut().extend(extensions.clone());
    }
    reqwest::Response::from(wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nesting_is_bounded_outside_strings_only() {
        let deep = |levels: usize| "[".repeat(levels) + &"]".repeat(levels);
        assert!(check_nesting(deep(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(check_nesting(deep(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
        assert!(check_nesting(deep(100_000).as_bytes()).is_err());
        let quoted = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(check_nesting(quoted.as_bytes()).is_ok(), "{quoted}");
        let objects = "{\"a\":".repeat(MAX_JSON_DEPTH + 1) + "1" + &"}".repeat(MAX_JSON_DEPTH + 1);
        assert!(check_nesting(objects.as_bytes()).is_err());
    }
}
