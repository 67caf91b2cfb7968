//! Hooks that progenitor's generated methods call around every request: this is where the API key is attached.

use std::fmt;
use std::sync::Arc;

use progenitor_client::{ClientHooks, OperationInfo};
use reqwest::header::{AUTHORIZATION, HeaderValue};

use crate::generated::Client as GeneratedClient;

/// What the hand-written layer hands to the generated client: shared by every clone, cheap to clone.
#[derive(Clone)]
pub struct ClientState {
    inner: Arc<StateInner>,
}

struct StateInner {
    /// `Bearer <key>`, marked sensitive so that `reqwest` and `http` never print it.
    authorization: HeaderValue,
    /// The key itself, only to scrub it from error bodies that echo it back.
    api_key: Box<str>,
}

impl ClientState {
    pub(crate) fn new(authorization: HeaderValue, api_key: &str) -> Self {
        Self {
            inner: Arc::new(StateInner {
                authorization,
                api_key: api_key.into(),
            }),
        }
    }

    /// Converts an error of a generated method, with the key scrubbed from anything the server sent back.
    pub(crate) async fn convert_error(
        &self,
        operation: &'static str,
        error: progenitor_client::Error<progenitor_client::ByteStream>,
    ) -> crate::Error {
        crate::Error::from_generated(operation, error)
            .await
            .redact(&self.inner.api_key)
    }
}

impl fmt::Debug for ClientState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ClientState")
            .field("authorization", &"Bearer <redacted>")
            .finish()
    }
}

impl ClientHooks<ClientState> for GeneratedClient {
    async fn pre<E>(
        &self,
        request: &mut reqwest::Request,
        _info: &OperationInfo,
    ) -> Result<(), progenitor_client::Error<E>> {
        let headers = request.headers_mut();
        headers.insert(AUTHORIZATION, self.inner.inner.authorization.clone());
        // progenitor adds `api-version: <info.version>` for Dropshot servers; the Inkeep API has no
        // such header, and the spec's version is ours, not the API's, so it is not sent.
        headers.remove("api-version");
        Ok(())
    }
}
