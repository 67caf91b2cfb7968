//! Every body is compared with JSON written by hand from the API reference, then decoded back,
//! so that what is sent is what the reference shows and what the generated types read.

mod builder;
mod filter;
mod properties;
mod row;
mod select;
mod view;

use std::fmt::Debug;
use std::num::NonZeroU64;

use chrono::DateTime;
use serde::Serialize;
use serde::de::DeserializeOwned;

use serde_json::json;

use super::*;
use crate::error::Error;
use crate::types;
use crate::types::{
    AggregationFunction, ConversationsViewField as C, EventsViewField as E, FeedbackViewField,
    FieldMode, FilterOperator, PropertyField, SemanticThreadsViewField as S, SortDirection,
    TimeUnit,
};

type TestResult = Result<(), Box<dyn std::error::Error>>;

/// Asserts that `body` serializes to `expected`, and that `expected` decodes into `body`.
fn round_trip<B>(body: &B, expected: serde_json::Value) -> TestResult
where
    B: Serialize + DeserializeOwned + PartialEq + Debug,
{
    assert_eq!(serde_json::to_value(body)?, expected);
    let decoded: B = serde_json::from_value(expected)?;
    assert_eq!(&decoded, body);
    Ok(())
}

/// A conversations query with only `filter`, and the body it must make.
fn where_body(filter: Filter<ConversationsView>) -> types::QueryConversationsBody {
    conversations().filter(filter).build()
}
