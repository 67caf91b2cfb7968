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
///
/// A body that ends inside a string (truncated, or with a backslash as its last byte) passes:
/// nothing after its last complete bracket can nest deeper, and serde_json refuses it anyway.
pub(crate) fn check_nesting(body: &[u8]) -> Result<(), serde_json::Error> {
    let mut depth = 0usize;
    let mut at = 0usize;
    while let Some(&byte) = body.get(at) {
        match byte {
            // Strings are most of a page's bytes: jump to their end instead of stepping through.
            b'"' => match string_end(body, at + 1) {
                Some(end) => at = end,
                None => return Ok(()),
            },
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

/// Where the quote that ends a string whose contents start at `from` is, skipping escaped
/// characters (an escape is often followed by another soon, so each search after one starts a
/// word at a time again); `None` when the body ends first.
fn string_end(body: &[u8], mut from: usize) -> Option<usize> {
    loop {
        let found = quote_or_backslash(body, from)?;
        if body.get(found) == Some(&b'\\') {
            // The escaped byte (a quote or a backslash among them) cannot end the string.
            from = found + 2;
        } else {
            return Some(found);
        }
    }
}

/// How many bytes of a string are searched a word at a time before handing over to `memchr2`:
/// most strings of a page are keys, ids and times, shorter than this, and `memchr2`'s call and
/// setup cost more than the search of so few bytes.
const SHORT_STRING_BYTES: usize = 32;

/// The first quote or backslash at or after `from` (which may be past the end), or `None`.
fn quote_or_backslash(body: &[u8], from: usize) -> Option<usize> {
    let rest = body.get(from..)?;
    let mut searched = 0;
    while searched < SHORT_STRING_BYTES {
        let Some(word) = rest.get(searched..).and_then(<[u8]>::first_chunk::<8>) else {
            break;
        };
        let found = quote_or_backslash_bytes(u64::from_le_bytes(*word));
        if found != 0 {
            // Little-endian: the lowest flagged byte is the first in the body.
            return Some(from + searched + (found.trailing_zeros() / 8) as usize);
        }
        searched += 8;
    }
    memchr::memchr2(b'"', b'\\', rest.get(searched..)?).map(|found| from + searched + found)
}

/// A word with the high bit set in the lowest byte of `word` that is a quote or a backslash,
/// zero when no byte is. Bytes above that one may be flagged wrongly (a borrow runs up from a
/// match), but no byte below the first match ever is, which is all the caller reads.
fn quote_or_backslash_bytes(word: u64) -> u64 {
    const ONES: u64 = u64::from_ne_bytes([0x01; 8]);
    const HIGHS: u64 = u64::from_ne_bytes([0x80; 8]);
    let zero_bytes = |x: u64| x.wrapping_sub(ONES) & !x & HIGHS;
    zero_bytes(word ^ (ONES * u64::from(b'"'))) | zero_bytes(word ^ (ONES * u64::from(b'\\')))
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

    fn deep(levels: usize) -> String {
        "[".repeat(levels) + &"]".repeat(levels)
    }

    /// The message of the error for a bracket that opens one level too many at `at`.
    fn too_deep_at(at: usize) -> String {
        format!("the JSON nests deeper than {MAX_JSON_DEPTH} levels at byte {at}")
    }

    fn message(body: &[u8]) -> Option<String> {
        check_nesting(body).err().map(|error| error.to_string())
    }

    /// What `check_nesting` must answer, one byte at a time with no shortcuts.
    fn reference(body: &[u8]) -> Option<String> {
        let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
        for (at, &byte) in body.iter().enumerate() {
            if in_string {
                if escaped {
                    escaped = false;
                } else if byte == b'\\' {
                    escaped = true;
                } else if byte == b'"' {
                    in_string = false;
                }
                continue;
            }
            match byte {
                b'"' => in_string = true,
                b'[' | b'{' => {
                    depth += 1;
                    if depth > MAX_JSON_DEPTH {
                        return Some(too_deep_at(at));
                    }
                }
                b']' | b'}' => depth = depth.saturating_sub(1),
                _ => {}
            }
        }
        None
    }

    #[test]
    fn nesting_is_bounded_outside_strings_only() {
        assert!(check_nesting(deep(MAX_JSON_DEPTH).as_bytes()).is_ok());
        assert!(check_nesting(deep(MAX_JSON_DEPTH + 1).as_bytes()).is_err());
        assert!(check_nesting(deep(100_000).as_bytes()).is_err());
        let quoted = format!("{{\"a\": \"{}\\\"{}\"}}", "[".repeat(500), "{".repeat(500));
        assert!(check_nesting(quoted.as_bytes()).is_ok(), "{quoted}");
        let objects = "{\"a\":".repeat(MAX_JSON_DEPTH + 1) + "1" + &"}".repeat(MAX_JSON_DEPTH + 1);
        assert!(check_nesting(objects.as_bytes()).is_err());
    }

    #[test]
    fn the_limit_passes_and_one_level_more_fails_with_where() {
        assert_eq!(message(deep(MAX_JSON_DEPTH).as_bytes()), None);
        assert_eq!(
            message(deep(MAX_JSON_DEPTH + 1).as_bytes()),
            Some(too_deep_at(MAX_JSON_DEPTH))
        );
        let objects = |levels: usize| "{\"k\":".repeat(levels) + "1" + &"}".repeat(levels);
        assert_eq!(message(objects(MAX_JSON_DEPTH).as_bytes()), None);
        // Each level before the last is `{"k":`, five bytes.
        assert_eq!(
            message(objects(MAX_JSON_DEPTH + 1).as_bytes()),
            Some(too_deep_at(5 * MAX_JSON_DEPTH))
        );
        // Closing brackets give levels back: many shallow documents in a row pass.
        assert_eq!(message(deep(MAX_JSON_DEPTH).repeat(50).as_bytes()), None);
    }

    /// Every length of string up to past the word-at-a-time search and into `memchr2`'s, so that
    /// each way of finding a string's end is exercised, with its end in each byte of a word.
    #[test]
    fn brackets_in_strings_of_any_length_do_not_count() {
        for length in 0..100 {
            let inside = "[{".repeat(length).chars().take(length).collect::<String>();
            let body = format!("[\"{inside}\",{}]", deep(MAX_JSON_DEPTH - 1));
            assert_eq!(message(body.as_bytes()), None, "{body}");
            // A string's end is found where it is: the brackets after it count.
            let body = format!("[\"{inside}\",{}]", deep(MAX_JSON_DEPTH));
            let at = 1 + (length + 2) + 1 + MAX_JSON_DEPTH - 1;
            assert_eq!(message(body.as_bytes()), Some(too_deep_at(at)), "{body}");
        }
    }

    #[test]
    fn escaped_quotes_do_not_end_a_string() {
        for before in 0..80 {
            let padding = "x".repeat(before);
            // An escaped quote, then brackets still inside the string.
            let body = format!("[\"{padding}\\\"{}\"]", "[".repeat(500));
            assert_eq!(message(body.as_bytes()), None, "{body}");
            // An escaped quote at the very start of a string and at its end.
            let body = format!("[\"\\\"{padding}\\\"\",{}]", deep(MAX_JSON_DEPTH));
            let at = body.len() - MAX_JSON_DEPTH - 2;
            assert_eq!(message(body.as_bytes()), Some(too_deep_at(at)), "{body}");
        }
    }

    #[test]
    fn an_escaped_backslash_before_a_quote_ends_the_string_there() {
        for before in 0..80 {
            let padding = "y".repeat(before);
            // `\\"`: the backslash is escaped, the quote closes the string, the brackets count.
            let body = format!("[\"{padding}\\\\\",{}]", deep(MAX_JSON_DEPTH));
            let at = 1 + 1 + before + 2 + 1 + 1 + MAX_JSON_DEPTH - 1;
            assert_eq!(message(body.as_bytes()), Some(too_deep_at(at)), "{body}");
            // `\\\"`: an escaped backslash, then an escaped quote: still inside.
            let body = format!("[\"{padding}\\\\\\\"{}\"]", "{".repeat(500));
            assert_eq!(message(body.as_bytes()), None, "{body}");
        }
    }

    #[test]
    fn a_body_cut_inside_a_string_passes_and_its_brackets_do_not_count() {
        for before in 0..80 {
            let padding = "z".repeat(before);
            let open = "[".repeat(MAX_JSON_DEPTH);
            // Unterminated: everything after the quote is inside the string.
            let body = format!("{open}\"{padding}{}", "[".repeat(500));
            assert_eq!(message(body.as_bytes()), None, "{body}");
            // A backslash as the last byte, and one before a last quote it escapes.
            for tail in ["\\", "\\\""] {
                let body = format!("{open}\"{padding}{tail}");
                assert_eq!(message(body.as_bytes()), None, "{body}");
            }
        }
        assert_eq!(message(b"\""), None);
        assert_eq!(message(b"\"\\"), None);
        assert_eq!(message(b""), None);
    }

    #[test]
    fn nesting_after_a_long_string_is_counted_from_its_end() {
        let long = "a [ { \\\" b ".repeat(10_000);
        let body = format!("{{\"k\":\"{long}\",\"v\":{}}}", deep(MAX_JSON_DEPTH));
        let at = body.len() - MAX_JSON_DEPTH - 2;
        assert_eq!(message(body.as_bytes()), Some(too_deep_at(at)));
        let body = format!("{{\"k\":\"{long}\",\"v\":{}}}", deep(MAX_JSON_DEPTH - 1));
        assert_eq!(message(body.as_bytes()), None);
    }

    #[test]
    fn the_word_search_finds_the_first_quote_or_backslash() {
        // Bytes next to the ones searched for (`!`, `#`, `[`, `]`) and with the high bit set.
        let bytes = [
            b'"', b'\\', b'!', b'#', b'[', b']', b'a', 0x00, 0xa2, 0xdc, 0xff, 0x80,
        ];
        let mut state = 0x2545_f491_4f6c_dd1d_u64;
        for _ in 0..20_000 {
            let mut word = [0u8; 8];
            for byte in &mut word {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                // Mostly bytes that are not searched for, so that a match is often late or absent.
                *byte = bytes[(state % 64) as usize % bytes.len()];
                if !state.is_multiple_of(5) && (*byte == b'"' || *byte == b'\\') {
                    *byte = b'a';
                }
            }
            let expected = word.iter().position(|&byte| byte == b'"' || byte == b'\\');
            let found = quote_or_backslash_bytes(u64::from_le_bytes(word));
            let found = (found != 0).then(|| (found.trailing_zeros() / 8) as usize);
            assert_eq!(found, expected, "{word:?}");
        }
    }

    /// Random JSON-ish bytes, rich in quotes, backslashes and brackets, answered as the
    /// one-byte-at-a-time reference does, error position included.
    #[test]
    fn random_bodies_are_answered_as_the_reference_does() {
        let mut state = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut refused = 0;
        for _ in 0..5_000 {
            let length = (next() % 700) as usize;
            // Some bodies lean to opening brackets, so that the limit is reached.
            let opening = next() % 3;
            let mut body = Vec::with_capacity(length + MAX_JSON_DEPTH);
            // Most bodies start deep, so that the random bytes decide whether the limit is passed.
            if opening > 0 {
                let levels = MAX_JSON_DEPTH - 30 + (next() % 40) as usize;
                body.extend(std::iter::repeat_n(b'[', levels));
            }
            while body.len() < length {
                let roll = next() % 100;
                let byte = match roll {
                    0..=5 => b'"',
                    6..=8 => b'\\',
                    9..=29 if opening > 0 => b'[',
                    30..=39 if opening > 1 => b'{',
                    9..=12 => b'[',
                    13..=16 => b'{',
                    40..=44 => b']',
                    45..=47 => b'}',
                    48..=49 => 0xdc,
                    // A run, so that strings are long enough for each way of searching them.
                    50..=54 => {
                        body.extend(std::iter::repeat_n(b'x', (next() % 60) as usize));
                        continue;
                    }
                    _ => b"ab ,:1!#]["[(next() % 10) as usize],
                };
                body.push(byte);
            }
            let expected = reference(&body);
            refused += usize::from(expected.is_some());
            assert_eq!(
                message(&body),
                expected,
                "{}",
                String::from_utf8_lossy(&body)
            );
        }
        // The comparison means something only if both answers were met often.
        assert!((500..4_500).contains(&refused), "{refused} refused");
    }
}
