//! The kinds of a conversation and of its messages, reached without a `match` on each union.
//!
//! A conversation's messages are the `Message` union, since the spec shares it between the three
//! kinds of conversation; without these accessors, reading the messages of an OpenAI
//! conversation as OpenAI messages takes a second `match` on every message.

use crate::types::{
    Conversation, Message, OpenAiConversation, OpenAiMessage, SupportCopilotConversation,
    SupportCopilotMessage, SupportTicketConversation, SupportTicketMessage,
};

impl Conversation {
    /// The OpenAI conversation, when this is one.
    pub fn as_openai(&self) -> Option<&OpenAiConversation> {
        match self {
            Conversation::OpenAi(conversation) => Some(conversation),
            _ => None,
        }
    }

    /// The support ticket, when this is one.
    pub fn as_support_ticket(&self) -> Option<&SupportTicketConversation> {
        match self {
            Conversation::SupportTicket(conversation) => Some(conversation),
            _ => None,
        }
    }

    /// The support copilot session, when this is one.
    pub fn as_support_copilot(&self) -> Option<&SupportCopilotConversation> {
        match self {
            Conversation::SupportCopilot(conversation) => Some(conversation),
            _ => None,
        }
    }

    /// The messages of an OpenAI conversation, as OpenAI messages; `None` for another kind.
    ///
    /// See [`OpenAiConversation::openai_messages`] for what it yields.
    ///
    /// ```
    /// use inkeep_analytics::types::Conversation;
    ///
    /// # fn demo(conversation: &Conversation) {
    /// for message in conversation.openai_messages().into_iter().flatten() {
    ///     println!("{:?}: {:?}", message.role, message.content);
    /// }
    /// # }
    /// ```
    pub fn openai_messages(
        &self,
    ) -> Option<impl DoubleEndedIterator<Item = &OpenAiMessage> + Clone + '_> {
        self.as_openai().map(OpenAiConversation::openai_messages)
    }
}

impl OpenAiConversation {
    /// The conversation's messages as OpenAI messages, in order.
    ///
    /// The API sends only OpenAI messages in an OpenAI conversation; a message of another kind,
    /// were one sent, is skipped here and stays in `messages`.
    /// `messages_open_ai_format` holds the same messages in the chat-completions request format.
    pub fn openai_messages(&self) -> impl DoubleEndedIterator<Item = &OpenAiMessage> + Clone + '_ {
        self.messages.iter().filter_map(Message::as_openai)
    }
}

impl Message {
    /// The OpenAI message, when this is one.
    pub fn as_openai(&self) -> Option<&OpenAiMessage> {
        match self {
            Message::OpenAi(message) => Some(message),
            _ => None,
        }
    }

    /// The support ticket message, when this is one.
    pub fn as_support_ticket(&self) -> Option<&SupportTicketMessage> {
        match self {
            Message::SupportTicket(message) => Some(message),
            _ => None,
        }
    }

    /// The support copilot message, when this is one.
    pub fn as_support_copilot(&self) -> Option<&SupportCopilotMessage> {
        match self {
            Message::SupportCopilot(message) => Some(message),
            _ => None,
        }
    }
}
