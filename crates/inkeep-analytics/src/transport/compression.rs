//! Content codings: every request asks for gzip, brotli and zstd, and the client decodes the answers itself, so that a page fetched ahead can wait compressed.
//!
//! `reqwest` can decode answers, but only as they arrive. On a long link a listing keeps up to its
//! window of pages in flight, and each then held its page decoded, with a decoder of its own
//! (brotli's and zstd's buffers are about the size of a page): most of a listing's memory.
//! The `reqwest::Client` this crate builds therefore decodes nothing, and
//! - every answer but a listing's page is decoded as it streams ([`decode_streaming`], in the
//!   `exec` hook), so that the generated methods and the CSV exports see the decoded bytes;
//! - a listing's page is read as it crossed the wire (about a seventh of its size) and decoded
//!   whole ([`decode_held`]) only when the reader nears it (see `crate::pagination`).
//!
//! A `reqwest::Client` the caller supplies may decode by itself: its answers come without
//! `Content-Encoding` and pass through untouched. A coding the client did not ask for is left as
//! it came, to fail as JSON, which is what `reqwest` does with it too.

use std::io;

use async_compression::tokio::bufread::{BrotliDecoder, GzipDecoder, ZstdDecoder};
use bytes::Bytes;
use futures::TryStreamExt;
use http_body_util::BodyExt;
use reqwest::header::{CONTENT_ENCODING, CONTENT_LENGTH, HeaderMap};
use tokio::io::AsyncRead;
use tokio_util::io::{ReaderStream, StreamReader};

use super::limits::map_parts;

/// What every request asks for in `Accept-Encoding`: the codings [`Coding`] decodes.
pub(crate) const ACCEPTED_CODINGS: &str = "gzip, br, zstd";

/// How many decoded bytes a decoder hands on at a time.
const DECODED_CHUNK_BYTES: usize = 32 * 1024;

/// A content coding the client decodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Coding {
    Gzip,
    Brotli,
    Zstd,
}

impl Coding {
    /// The coding of an answer, from its `Content-Encoding`; `None` for an answer sent as it is,
    /// or in a coding (or a chain of codings) the client did not ask for.
    pub(crate) fn of(headers: &HeaderMap) -> Option<Self> {
        let value = headers.get(CONTENT_ENCODING)?.to_str().ok()?.trim();
        let is = |name: &str| value.eq_ignore_ascii_case(name);
        if is("gzip") || is("x-gzip") {
            Some(Coding::Gzip)
        } else if is("br") {
            Some(Coding::Brotli)
        } else if is("zstd") {
            Some(Coding::Zstd)
        } else {
            None
        }
    }
}

/// The same answer with its body decoded as it streams, without the `Content-Encoding` and
/// `Content-Length` that described the coded body. An answer in no coding the client decodes is
/// handed back as it is.
pub(crate) fn decode_streaming(response: reqwest::Response) -> reqwest::Response {
    let Some(coding) = Coding::of(response.headers()) else {
        return response;
    };
    map_parts(response, |parts, body| {
        parts.headers.remove(CONTENT_ENCODING);
        parts.headers.remove(CONTENT_LENGTH);
        decoded(coding, body)
    })
}

/// An answer whose body is `coded`, a whole body read as it crossed the wire in `coding`, to be
/// read decoded. Its bytes are decoded as they are read, so that a limit put on the answer (as
/// the `exec` hook puts one) refuses a compression bomb once it has expanded past it.
pub(crate) fn decode_held(coded: Bytes, coding: Coding) -> reqwest::Response {
    reqwest::Response::from(http::Response::new(decoded(
        coding,
        reqwest::Body::from(coded),
    )))
}

/// `body`, decoded from `coding` as it is read.
fn decoded(coding: Coding, body: reqwest::Body) -> reqwest::Body {
    let coded = StreamReader::new(body.into_data_stream().map_err(io::Error::other));
    match coding {
        Coding::Gzip => stream_of(GzipDecoder::new(coded)),
        Coding::Brotli => stream_of(BrotliDecoder::new(coded)),
        Coding::Zstd => stream_of(ZstdDecoder::new(coded)),
    }
}

fn stream_of(reader: impl AsyncRead + Send + 'static) -> reqwest::Body {
    reqwest::Body::wrap_stream(ReaderStream::with_capacity(reader, DECODED_CHUNK_BYTES))
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn the_codings_asked_for_are_the_ones_decoded() {
        let coding = |value: &'static str| {
            let mut headers = HeaderMap::new();
            headers.insert(CONTENT_ENCODING, HeaderValue::from_static(value));
            Coding::of(&headers)
        };
        assert_eq!(coding("gzip"), Some(Coding::Gzip));
        assert_eq!(coding(" GZIP "), Some(Coding::Gzip));
        assert_eq!(coding("br"), Some(Coding::Brotli));
        assert_eq!(coding("zstd"), Some(Coding::Zstd));
        assert_eq!(coding("identity"), None);
        assert_eq!(coding("deflate"), None);
        assert_eq!(coding("gzip, br"), None);
        assert_eq!(Coding::of(&HeaderMap::new()), None);
        for name in ["gzip", "br", "zstd"] {
            assert!(ACCEPTED_CODINGS.split(", ").any(|asked| asked == name));
        }
    }

    /// `plain`, coded in `coding` by async-compression's encoders.
    async fn encode(coding: Coding, plain: &[u8]) -> Vec<u8> {
        use async_compression::Level;
        use async_compression::tokio::bufread::{BrotliEncoder, GzipEncoder, ZstdEncoder};
        use tokio::io::AsyncReadExt;
        // The fastest levels: brotli's default takes a minute on a page in a debug build.
        let level = Level::Fastest;
        let mut coded = Vec::new();
        let read = match coding {
            Coding::Gzip => {
                GzipEncoder::with_quality(plain, level)
                    .read_to_end(&mut coded)
                    .await
            }
            Coding::Brotli => {
                BrotliEncoder::with_quality(plain, level)
                    .read_to_end(&mut coded)
                    .await
            }
            Coding::Zstd => {
                ZstdEncoder::with_quality(plain, level)
                    .read_to_end(&mut coded)
                    .await
            }
        };
        assert!(read.is_ok(), "{read:?}");
        coded
    }

    async fn read_all(response: reqwest::Response) -> reqwest::Result<Vec<u8>> {
        let mut response = response;
        let mut read = Vec::new();
        while let Some(chunk) = response.chunk().await? {
            read.extend_from_slice(&chunk);
        }
        Ok(read)
    }

    #[tokio::test]
    async fn held_and_streamed_bodies_decode_to_the_bytes_sent() {
        let plain: Vec<u8> = (0..20_000u32)
            .flat_map(|n| format!("{{\"n\":{n},\"text\":\"héllo\"}}").into_bytes())
            .collect();
        for coding in [Coding::Gzip, Coding::Brotli, Coding::Zstd] {
            let coded = encode(coding, &plain).await;
            assert!(coded.len() * 5 < plain.len(), "{coding:?} should compress");
            let held = read_all(decode_held(Bytes::from(coded.clone()), coding)).await;
            assert!(held.is_ok_and(|held| held == plain), "{coding:?} held");

            let name = match coding {
                Coding::Gzip => "gzip",
                Coding::Brotli => "br",
                Coding::Zstd => "zstd",
            };
            let answer = http::Response::builder()
                .header(CONTENT_ENCODING, name)
                .header(CONTENT_LENGTH, coded.len())
                .body(reqwest::Body::from(coded.clone()));
            let Ok(answer) = answer else {
                panic!("cannot build an answer");
            };
            let streamed = decode_streaming(reqwest::Response::from(answer));
            assert!(streamed.headers().get(CONTENT_ENCODING).is_none());
            assert!(streamed.headers().get(CONTENT_LENGTH).is_none());
            let streamed = read_all(streamed).await;
            assert!(
                streamed.is_ok_and(|streamed| streamed == plain),
                "{coding:?} streamed"
            );

            // A cut-off coded body is an error, never a short body taken for whole.
            let cut = Bytes::from(coded[..coded.len() / 2].to_vec());
            assert!(
                read_all(decode_held(cut, coding)).await.is_err(),
                "{coding:?} cut"
            );
        }
    }

    #[tokio::test]
    async fn an_answer_in_no_coding_passes_through() {
        let answer = http::Response::builder()
            .header(CONTENT_ENCODING, "deflate")
            .body(reqwest::Body::from(b"as sent".to_vec()));
        let Ok(answer) = answer else {
            panic!("cannot build an answer");
        };
        let passed = decode_streaming(reqwest::Response::from(answer));
        assert_eq!(
            passed
                .headers()
                .get(CONTENT_ENCODING)
                .map(HeaderValue::as_bytes),
            Some(&b"deflate"[..])
        );
        assert!(read_all(passed).await.is_ok_and(|body| body == b"as sent"));
    }
}
