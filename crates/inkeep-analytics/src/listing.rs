//! Paged listings of conversations and feedback, read page by page or item by item as lazy streams.
//!
//! [`Client::list_conversations`](crate::Client::list_conversations) and
//! [`Client::list_feedback`](crate::Client::list_feedback) start a [`Listing`]; its `pages()` and
//! `items()` streams fetch nothing until they are polled.
//! The raw pages ([`RawConversationPage`], [`RawFeedbackPage`]) keep each record's JSON as sent,
//! for programs that store or forward it without reading it.

pub use crate::pagination::{
    ConversationListing, ConversationPages, DEFAULT_FEEDBACK_PREFETCH, DEFAULT_PREFETCH,
    FeedbackItem, FeedbackListing, FeedbackPages, ListConversations, ListFeedback, Listing,
    ListingKind, MAX_PAGE_SIZE, RawConversationPage, RawFeedbackPage, Sentiment, raw_record_id,
};
