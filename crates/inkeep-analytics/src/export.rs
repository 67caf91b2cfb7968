//! CSV exports as byte streams, so that an export of any size passes through without being held in memory.

use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use futures::{AsyncRead, Stream, TryStreamExt};
use progenitor_client::ByteStream;

use crate::error::{Error, Result};

/// The body of a CSV export, chunk by chunk as it arrives.
///
/// It is a `Stream` of `Result<Bytes>`; [`CsvExport::into_async_read`] turns it into an `AsyncRead`.
/// A failure mid-way (a dropped connection) is yielded as an [`Error::Transport`] and ends it.
pub struct CsvExport {
    operation: &'static str,
    inner: ByteStream,
    done: bool,
}

impl CsvExport {
    pub(crate) fn new(operation: &'static str, inner: ByteStream) -> Self {
        Self {
            operation,
            inner,
            done: false,
        }
    }

    /// Reads the stream as an `AsyncRead` (for `futures::io::copy` and friends); errors become `std::io::Error`s.
    pub fn into_async_read(self) -> impl AsyncRead + Send + Unpin {
        self.map_err(std::io::Error::other).into_async_read()
    }
}

impl std::fmt::Debug for CsvExport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CsvExport")
            .field("operation", &self.operation)
            .field("done", &self.done)
            .finish_non_exhaustive()
    }
}

impl Stream for CsvExport {
    type Item = Result<Bytes>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        let operation = self.operation;
        match self.inner.as_mut().poll_next(cx) {
            Poll::Ready(Some(Ok(chunk))) => Poll::Ready(Some(Ok(chunk))),
            Poll::Ready(Some(Err(error))) => {
                self.done = true;
                Poll::Ready(Some(Err(Error::transport(operation, error))))
            }
            Poll::Ready(None) => {
                self.done = true;
                Poll::Ready(None)
            }
            Poll::Pending => Poll::Pending,
        }
    }
}
