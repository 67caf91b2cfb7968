//! Feedback on the message a completion became, from what the wrapper returned: the completion
//! (or any of its chunks) names it, so the caller never handles the derived message id.

use async_openai::types::chat::{CreateChatCompletionResponse, CreateChatCompletionStreamResponse};

/// What names a completion: the value the wrapper returned, one of its stream's chunks, or its id.
pub trait CompletionRef {
    /// The completion's id (`chatcmpl-…`), which every chunk of a stream shares.
    fn completion_id(&self) -> &str;
}

impl CompletionRef for CreateChatCompletionResponse {
    fn completion_id(&self) -> &str {
        &self.id
    }
}

impl CompletionRef for CreateChatCompletionStreamResponse {
    fn completion_id(&self) -> &str {
        &self.id
    }
}

impl CompletionRef for str {
    fn completion_id(&self) -> &str {
        self
    }
}

impl CompletionRef for String {
    fn completion_id(&self) -> &str {
        self
    }
}

impl<T: CompletionRef + ?Sized> CompletionRef for &T {
    fn completion_id(&self) -> &str {
        (**self).completion_id()
    }
}
