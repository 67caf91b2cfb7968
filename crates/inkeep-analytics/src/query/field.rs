//! Fields of a view, with an optional JSON path into `properties` or `userProperties`, and their parsing from text such as `properties.plan`.

use std::marker::PhantomData;

use super::{ViewField, ViewKind, sealed};
use crate::error::{Error, Result};

/// A field of view `V`, optionally with a JSON path into it (for `properties` and `userProperties`).
///
/// A path goes where the API expects it: in a condition's value as `{path, value}`, and in the
/// `path` of an aggregation, a field selection or a grouping.
///
/// ```
/// use inkeep_analytics::query::{EventsView, Field};
/// use inkeep_analytics::types::EventsViewField;
///
/// let plan = Field::<EventsView>::properties(["billing", "plan"]);
/// assert_eq!(plan.name(), "properties");
/// assert_eq!(plan.path(), ["billing", "plan"]);
/// let kind = Field::from(EventsViewField::EventType);
/// assert_eq!(kind.name(), "eventType");
/// assert!(kind.path().is_empty());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Field<V: ViewKind> {
    pub(super) name: String,
    pub(super) path: Vec<String>,
    view: PhantomData<fn() -> V>,
}

impl<V: ViewKind> Field<V> {
    pub(super) fn named(name: &str) -> Self {
        Field {
            name: name.to_string(),
            path: Vec::new(),
            view: PhantomData,
        }
    }

    /// Parses a field of the view from text: its wire name, then optionally a JSON path with dots
    /// (`properties.plan` is `plan` inside `properties`), as the result rows name such columns.
    ///
    /// ```
    /// use inkeep_analytics::query::{ConversationsView, Field};
    ///
    /// let plan = Field::<ConversationsView>::parse("properties.plan")?;
    /// assert_eq!(plan, Field::properties(["plan"]));
    /// assert!(Field::<ConversationsView>::parse("eventType").is_err());
    /// # Ok::<(), inkeep_analytics::Error>(())
    /// ```
    ///
    /// # Errors
    ///
    /// [`Error::InvalidInput`] when the name before the first dot is not a field the spec lists for
    /// the view (the message lists them), or a part of the path is empty.
    pub fn parse(text: &str) -> Result<Self> {
        let mut parts = text.split('.');
        let name = parts.next().unwrap_or_default();
        let field = V::Fields::parse_known(name)?;
        let path: Vec<String> = parts.map(str::to_string).collect();
        if path.iter().any(String::is_empty) {
            return Err(Error::invalid_input(format!(
                "{text:?}: a part of the JSON path after {name:?} is empty"
            )));
        }
        Ok(Field::json(field, path))
    }

    /// A JSON path inside a field of the view, such as `["plan"]` inside `properties`.
    ///
    /// The path replaces any path `field` already has.
    pub fn json<I, S>(field: impl IntoField<View = V>, path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut field = field.into_field();
        field.path = path.into_iter().map(Into::into).collect();
        field
    }

    /// A JSON path inside `properties`, the free-form object every view has.
    pub fn properties<I, S>(path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut field = Field::named("properties");
        field.path = path.into_iter().map(Into::into).collect();
        field
    }

    /// A JSON path inside `userProperties`, the object about the user that every view has.
    pub fn user_properties<I, S>(path: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let mut field = Field::named("userProperties");
        field.path = path.into_iter().map(Into::into).collect();
        field
    }

    /// The field's name on the wire.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The JSON path inside the field; empty for a plain field.
    pub fn path(&self) -> &[String] {
        &self.path
    }
}

impl<V: ViewKind> std::str::FromStr for Field<V> {
    type Err = Error;

    /// [`Field::parse`].
    fn from_str(text: &str) -> Result<Self> {
        Field::parse(text)
    }
}

impl<V: ViewKind> sealed::Sealed for Field<V> {}

impl<V: ViewKind> IntoField for Field<V> {
    type View = V;

    fn into_field(self) -> Field<V> {
        self
    }
}

/// What a condition, aggregation, field selection or grouping accepts as its field: a field of the
/// view ([`ViewField`]) or a [`Field`], which may hold a JSON path.
///
/// The view is an associated type rather than a parameter so that the compiler infers it from the
/// field alone. The trait is sealed.
pub trait IntoField: sealed::Sealed {
    /// The view the field belongs to.
    type View: ViewKind;

    /// The field, as a [`Field`].
    fn into_field(self) -> Field<Self::View>;
}

impl<F: ViewField> IntoField for F {
    type View = F::View;

    fn into_field(self) -> Field<F::View> {
        Field::named(self.wire_name())
    }
}
