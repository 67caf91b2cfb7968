//! The search statistics: the most frequent search queries and the users who searched each week.

use std::collections::{BTreeMap, HashMap, HashSet};

use chrono::{DateTime, Utc};

use super::select::Unit;
use super::values::parse_instant;
use crate::problem::Problem;
use crate::records::Event;
use crate::store::Snapshot;

/// Reads `after`: a date or date-time, or a Unix time in seconds or milliseconds.
pub(crate) fn parse_after(after: &str) -> Result<DateTime<Utc>, Problem> {
    if let Some(at) = parse_instant(after) {
        return Ok(at);
    }
    if let Ok(number) = after.parse::<i64>() {
        let at = if after.len() >= 13 {
            DateTime::from_timestamp_millis(number)
        } else {
            DateTime::from_timestamp(number, 0)
        };
        if let Some(at) = at {
            return Ok(at);
        }
    }
    Err(Problem::bad_request(format!(
        "after: `{after}` is not a date (2025-01-31), a date-time (2025-01-31T00:00:00Z) or a Unix time"
    )))
}

fn search_events<'a>(
    snapshot: &'a Snapshot,
    after: Option<DateTime<Utc>>,
    project_id: Option<&'a str>,
) -> impl Iterator<Item = &'a Event> + 'a {
    snapshot.events.iter().map(AsRef::as_ref).filter(move |e| {
        e.entity_type == "search"
            && project_id.is_none_or(|p| e.project_id.as_deref() == Some(p))
            && after.is_none_or(|after| parse_instant(&e.created_at).is_some_and(|at| at > after))
    })
}

/// How many searches each query had, most frequent first, and how many distinct queries there are.
pub(crate) fn top_search_queries(
    snapshot: &Snapshot,
    after: Option<DateTime<Utc>>,
    project_id: Option<&str>,
    limit: usize,
) -> (Vec<(String, usize)>, usize) {
    let mut counts: HashMap<&str, usize> = HashMap::new();
    for event in search_events(snapshot, after, project_id) {
        if let Some(query) = event.search_query.as_deref() {
            *counts.entry(query).or_default() += 1;
        }
    }
    let total = counts.len();
    let mut counts: Vec<(String, usize)> = counts
        .into_iter()
        .map(|(q, c)| (q.to_string(), c))
        .collect();
    counts.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
    counts.truncate(limit);
    (counts, total)
}

/// How many distinct users searched each week (weeks start on Monday), oldest week first.
pub(crate) fn weekly_search_users(
    snapshot: &Snapshot,
    after: Option<DateTime<Utc>>,
    project_id: Option<&str>,
) -> Vec<(String, usize)> {
    let mut weeks: BTreeMap<String, HashSet<String>> = Default::default();
    for event in search_events(snapshot, after, project_id) {
        let Some(week) = parse_instant(&event.created_at).and_then(|at| Unit::Week.bucket(at))
        else {
            continue;
        };
        let user = event
            .user_properties
            .as_ref()
            .and_then(|p| p.get("userId").or_else(|| p.get("id")))
            .filter(|id| !id.is_null());
        let users = weeks
            .entry(week.format("%Y-%m-%d").to_string())
            .or_default();
        if let Some(user) = user {
            users.insert(user.to_string());
        }
    }
    weeks
        .into_iter()
        .map(|(week, users)| (week, users.len()))
        .collect()
}
