//! The chat sessions the recorder's benchmark and its instruction-count example record: one
//! definition, so that their figures are of the same records.

use inkeep_analytics::Result;
use inkeep_analytics::types::{CreateOpenAiConversation, CreateOpenAiMessage};

/// Session `s` after `turns` turns, each a user and an assistant message of realistic length, as
/// a chat re-sends the whole conversation at every turn.
pub fn conversation(s: usize, turns: usize) -> Result<CreateOpenAiConversation> {
    let mut messages = Vec::with_capacity(turns * 2);
    for t in 0..turns {
        let question = format!("How do I configure the widget for project {s}, step {t}?");
        messages.push(CreateOpenAiMessage::user(question).with_id(format!("b{s}-u{t}"))?);
        let answer =
            "Open the dashboard, pick the integration, and paste the snippet into your page. "
                .repeat(3);
        messages.push(CreateOpenAiMessage::assistant(answer).with_id(format!("b{s}-a{t}"))?);
    }
    CreateOpenAiConversation::new(messages).with_id(format!("bench-{s}"))
}
