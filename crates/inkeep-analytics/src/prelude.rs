//! Everything a program needs to drive the SDK, in one glob import.
//!
//! Without it, a first program has to find and add `futures` for the stream methods, `serde_json`
//! for `extra` and `properties`, and `reqwest` for `StatusCode`, at versions that match the SDK's.
//!
//! ```no_run
//! use inkeep_analytics::prelude::*;
//!
//! # async fn demo() -> Result<()> {
//! let client = Client::from_env()?;
//!
//! // The stream methods (`try_next`, `try_filter`, ...) come from the prelude's extension traits.
//! let mut conversations = client.list_conversations().limit(50).items();
//! while let Some(conversation) = conversations.try_next().await? {
//!     let created = conversation.created_at_utc();
//!     let openai = conversation.openai_messages().map_or(0, |messages| messages.count());
//!     println!("{:?} {created:?}: {openai} OpenAI messages", conversation.id());
//! }
//!
//! // `json!`, `Map` and `Value` fill `properties` and `extra`.
//! let mut conversation = CreateOpenAiConversation::new(vec![CreateOpenAiMessage::user("Hi")]);
//! let mut properties = Map::new();
//! properties.insert("plan".into(), Value::from("pro"));
//! conversation.properties = Some(properties);
//! conversation.extra.insert("channel".into(), json!("web"));
//! let logged = client.log_conversation(conversation).await?;
//! println!("logged {:?}", logged.id());
//!
//! // The query language's builders and the generated view fields.
//! let query = query::conversations()
//!     .select(Selection::field(ConversationsViewField::Type))
//!     .select(Selection::aggregate(AggregationFunction::Count, ConversationsViewField::Id))
//!     .group_by(ConversationsViewField::Type)
//!     .filter(Filter::eq(ConversationsViewField::Type, "openai"));
//! let answer = client.query_conversations(query).await?;
//! println!("{:?} rows in all", answer.data.total_u64());
//!
//! // Errors keep the status the server answered with.
//! match client.get_conversation("conv_missing").await {
//!     Err(error) if error.status() == Some(StatusCode::NOT_FOUND) => println!("no such conversation"),
//!     other => println!("{:?}", other.map(|conversation| conversation.kind().map(str::to_owned))),
//! }
//! # Ok(())
//! # }
//! ```

// The extension traits are imported anonymously, as `futures::prelude` does: their methods come into
// scope without taking the names `StreamExt` and `TryStreamExt`, which `tokio_stream` also uses.
pub use futures::{Stream, StreamExt as _, TryStream, TryStreamExt as _};

pub use chrono::{DateTime, Utc};
pub use reqwest::StatusCode;
pub use serde_json::{Map, Value, json};

pub use crate::listing::Sentiment;
pub use crate::model::parse_timestamp;
pub use crate::query::{self, Column, Field, Filter, GroupBy, OrderBy, Query, Selection};
pub use crate::types::{
    self, AggregationFunction, Conversation, ConversationsViewField, CreateOpenAiConversation,
    CreateOpenAiMessage, CreateSupportCopilotConversation, CreateSupportMessage,
    CreateSupportTicketConversation, EventsViewField, FeedbackInput, FeedbackViewField,
    InsertEvent, Message, OpenAiRole, SemanticThreadsViewField, SortDirection, TimeUnit,
};
pub use crate::{ApiError, Client, ClientBuilder, Error, Result};
