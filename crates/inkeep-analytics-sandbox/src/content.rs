//! The text the seeded data is made of: topics with questions in several languages, answers,
//! links, users, agents and search queries, so that seeded conversations read like real ones.
//!
//! The prose lives in `data/*.json`, built into the crate with `include_str!` and parsed once, the
//! first time a sandbox starts; a unit test parses it, so a mistake in it fails `cargo test`, and a
//! sandbox that could not parse it would refuse to start with [`Error::SeedData`], never panic.

use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// The data files, by name, as they are built into the crate.
const TOPICS_JSON: (&str, &str) = ("data/topics.json", include_str!("../data/topics.json"));
const PEOPLE_JSON: (&str, &str) = ("data/people.json", include_str!("../data/people.json"));
const PHRASES_JSON: (&str, &str) = ("data/phrases.json", include_str!("../data/phrases.json"));

/// A source an answer cites.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkSeed {
    pub url: String,
    pub title: String,
    pub label: Option<String>,
    /// An open set: includes a kind the spec does not list (`youtube_video`) and `None`.
    pub kind: Option<String>,
    pub breadcrumbs: Vec<String>,
}

/// A question of a topic, in one language.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Question {
    /// Its language code (`en`, `ja`).
    pub language: String,
    pub text: String,
}

/// What a seeded conversation is about.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Topic {
    pub subject: String,
    pub category: String,
    pub question_type: String,
    pub questions: Vec<Question>,
    pub answer: String,
    pub follow_up: String,
    pub follow_up_answer: String,
    pub links: Vec<LinkSeed>,
    pub page: String,
    pub tags: Vec<String>,
    pub documented: bool,
    pub supported: bool,
    pub first_party: Vec<String>,
    pub third_party: Vec<String>,
    /// The documentation search the assistant runs, as tool-call arguments.
    pub search: String,
}

/// An end user; a company may be absent. Names and companies exercise unicode and CSV quoting
/// (commas, quotes).
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct User {
    pub name: String,
    pub email: String,
    pub company: Option<String>,
}

/// A support agent.
#[derive(Debug, Deserialize, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct Agent {
    pub name: String,
    pub email: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct People {
    users: Vec<User>,
    agents: Vec<Agent>,
}

/// The reason a feedback item gives, as the API takes it.
#[derive(Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Reason {
    pub label: String,
    pub details: String,
}

/// The phrases of the seed: lists it draws from, and the sentences of messages and feedback.
/// A template names its blanks in braces (`{customer}`), which [`fill`] fills.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub(crate) struct Phrases {
    /// What users search for, most frequent first.
    pub search_queries: Vec<String>,
    /// Models that answer, for the messages' properties.
    pub models: Vec<String>,
    /// What an agent's reply in a ticket says, before the answer.
    pub agent_openings: Vec<String>,
    /// Notes agents leave in tickets (not visible to the customer).
    pub internal_notes: Vec<String>,
    /// The system message of some assistant conversations.
    pub system_prompt: String,
    /// A copilot session's request: `{customer}`, `{question}`.
    pub copilot_request: String,
    /// The copilot's draft: `{customer}`, `{answer}`.
    pub copilot_draft: String,
    /// The agent asking for a second draft.
    pub copilot_revision: String,
    /// The second draft: `{customer}`, `{short}` (the start of the answer).
    pub copilot_short_reply: String,
    /// The reason some positive feedback gives.
    pub positive_reason: Reason,
    /// The reasons negative feedback gives, one drawn each time.
    pub negative_reasons: Vec<Reason>,
    /// The details some positive feedback gives.
    pub positive_details: String,
    /// The details some negative feedback gives.
    pub negative_details: String,
}

/// Fills the `{name}` blanks of a template in one pass, so that a value holding braces is kept
/// as it is; a blank without a value stays as written.
pub(crate) fn fill(template: &str, values: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        let blank = after.find('}').and_then(|close| {
            let name = &after[..close];
            values
                .iter()
                .find(|(key, _)| *key == name)
                .map(|(_, value)| (*value, close))
        });
        match blank {
            Some((value, close)) => {
                out.push_str(value);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// Everything the seed draws text from.
#[derive(Debug)]
pub(crate) struct Content {
    pub topics: Vec<Topic>,
    /// End users, the first ones the most active.
    pub users: Vec<User>,
    pub agents: Vec<Agent>,
    pub phrases: Phrases,
}

fn parse<T: serde::de::DeserializeOwned>((file, text): (&'static str, &str)) -> Result<T> {
    serde_json::from_str(text).map_err(|source| Error::SeedData {
        file,
        detail: None,
        source: Some(source),
    })
}

/// Refuses a list the seed draws from that is empty: drawing from it would have nothing to give.
fn non_empty<T>(file: &'static str, name: &'static str, items: &[T]) -> Result<()> {
    if items.is_empty() {
        return Err(Error::SeedData {
            file,
            detail: Some(format!("`{name}` is empty")),
            source: None,
        });
    }
    Ok(())
}

impl Content {
    fn parse() -> Result<Content> {
        let topics: Vec<Topic> = parse(TOPICS_JSON)?;
        let people: People = parse(PEOPLE_JSON)?;
        let phrases: Phrases = parse(PHRASES_JSON)?;
        non_empty(TOPICS_JSON.0, "topics", &topics)?;
        for topic in &topics {
            non_empty(TOPICS_JSON.0, "questions", &topic.questions)?;
            non_empty(TOPICS_JSON.0, "links", &topic.links)?;
        }
        non_empty(PEOPLE_JSON.0, "users", &people.users)?;
        non_empty(PEOPLE_JSON.0, "agents", &people.agents)?;
        non_empty(PHRASES_JSON.0, "searchQueries", &phrases.search_queries)?;
        non_empty(PHRASES_JSON.0, "models", &phrases.models)?;
        non_empty(PHRASES_JSON.0, "agentOpenings", &phrases.agent_openings)?;
        non_empty(PHRASES_JSON.0, "internalNotes", &phrases.internal_notes)?;
        non_empty(PHRASES_JSON.0, "negativeReasons", &phrases.negative_reasons)?;
        Ok(Content {
            topics,
            users: people.users,
            agents: people.agents,
            phrases,
        })
    }

    /// The content, parsed the first time it is asked for.
    ///
    /// # Errors
    ///
    /// [`Error::SeedData`] when a data file does not parse or a list in it is empty, which the
    /// unit tests rule out for the files built in.
    pub(crate) fn load() -> Result<&'static Content> {
        static CONTENT: OnceLock<Content> = OnceLock::new();
        if let Some(content) = CONTENT.get() {
            return Ok(content);
        }
        let parsed = Content::parse()?;
        Ok(CONTENT.get_or_init(|| parsed))
    }
}

/// Language codes and the locales their users have.
pub(crate) fn locale_of(language: &str) -> &'static str {
    match language {
        "de" => "de-DE",
        "ja" => "ja-JP",
        "ru" => "ru-RU",
        "es" => "es-ES",
        "fr" => "fr-FR",
        "pt" => "pt-BR",
        "zh" => "zh-CN",
        "ko" => "ko-KR",
        _ => "en-US",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_built_in_data_files_parse_and_have_something_to_draw() {
        let content = match Content::load() {
            Ok(content) => content,
            Err(error) => panic!("{error}: {:?}", std::error::Error::source(&error)),
        };
        assert_eq!(content.topics.len(), 13);
        assert_eq!(content.users.len(), 36);
        assert_eq!(content.agents.len(), 5);
        assert_eq!(
            content.phrases.search_queries.first().map(String::as_str),
            Some("api key")
        );
        assert_eq!(
            content.users.first().map(|u| u.name.as_str()),
            Some("Zoë Müller")
        );
        assert!(
            content
                .topics
                .iter()
                .all(|t| t.questions.iter().all(|q| !q.text.is_empty()))
        );
    }

    #[test]
    fn templates_fill_their_blanks_once() {
        assert_eq!(
            fill(
                "Hi {customer}! {short}… {unknown} {",
                &[("customer", "Zoë {short}"), ("short", "ok")]
            ),
            "Hi Zoë {short}! ok… {unknown} {"
        );
        let phrases = &Content::load().unwrap_or_else(|e| panic!("{e}")).phrases;
        for (template, blanks) in [
            (&phrases.copilot_request, &["{customer}", "{question}"][..]),
            (&phrases.copilot_draft, &["{customer}", "{answer}"][..]),
            (&phrases.copilot_short_reply, &["{customer}", "{short}"][..]),
        ] {
            for blank in blanks {
                assert!(template.contains(blank), "{template} has {blank}");
            }
        }
    }

    #[test]
    fn a_data_file_that_does_not_parse_is_an_error_naming_it() {
        let error = parse::<Vec<Topic>>(("data/topics.json", "[{\"subject\": 1}]"));
        assert!(
            matches!(
                error,
                Err(Error::SeedData {
                    file: "data/topics.json",
                    ..
                })
            ),
            "{error:?}"
        );
        let empty = non_empty::<User>("data/people.json", "users", &[]);
        assert!(empty.is_err_and(|e| e.to_string().contains("`users` is empty")));
    }
}
