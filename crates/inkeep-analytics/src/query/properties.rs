//! Requests for the keys and values of `properties` and `userProperties`, across views or in one.

use std::num::NonZeroU64;

use serde_json::Map;

use super::{Filter, ViewKind};
use crate::types;

/// The default of `PropertyValuesRequest.limit` in the spec.
pub const DEFAULT_PROPERTY_VALUES_LIMIT: NonZeroU64 = match NonZeroU64::new(100) {
    Some(limit) => limit,
    None => NonZeroU64::MIN,
};

/// The maximum of `PropertyValuesRequest.limit` in the spec (1 to 1000), which progenitor does not
/// check: [`crate::Client::query_property_values`] refuses a larger limit before any request.
pub const MAX_PROPERTY_VALUES_LIMIT: u64 = 1_000;

/// A request for the keys used in `properties` or `userProperties`, across every view.
pub fn property_keys(field: types::PropertyField) -> types::PropertyKeysRequest {
    types::PropertyKeysRequest {
        field,
        views: Vec::new(),
        where_: None,
        extra: Map::new(),
    }
}

/// A request for the keys used in `properties` or `userProperties` of view `V`, among the rows that
/// match `filter`.
pub fn property_keys_in<V: ViewKind>(
    field: types::PropertyField,
    filter: Option<Filter<V>>,
) -> types::PropertyKeysRequest {
    types::PropertyKeysRequest {
        field,
        views: vec![V::view()],
        where_: filter.map(Filter::into_generated),
        extra: Map::new(),
    }
}

/// A request for the values key `key` of `properties` or `userProperties` takes, across every
/// view, with the spec's default limit (100).
pub fn property_values(
    field: types::PropertyField,
    key: impl Into<String>,
) -> types::PropertyValuesRequest {
    types::PropertyValuesRequest {
        field,
        key: key.into(),
        limit: DEFAULT_PROPERTY_VALUES_LIMIT,
        views: Vec::new(),
        where_: None,
        extra: Map::new(),
    }
}

/// A request for the values key `key` of `properties` or `userProperties` takes in view `V`, among
/// the rows that match `filter`, with the spec's default limit (100).
pub fn property_values_in<V: ViewKind>(
    field: types::PropertyField,
    key: impl Into<String>,
    filter: Option<Filter<V>>,
) -> types::PropertyValuesRequest {
    types::PropertyValuesRequest {
        views: vec![V::view()],
        where_: filter.map(Filter::into_generated),
        ..property_values(field, key)
    }
}
