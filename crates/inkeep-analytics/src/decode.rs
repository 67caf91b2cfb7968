//! The runtime half of the generated single-pass decoders: objects that keep unknown keys and
//! unions that keep unknown kinds, read key by key with no intermediate buffer.
//!
//! `codegen/decoders.rs` writes, for each generated object, a "fields" struct implementing
//! [`DecodeObject`]; this module drives it. A union reads keys until it meets its discriminator,
//! holding the few keys before it (ids, mostly), then hands them and the rest of the object to the
//! kind's fields struct. An unknown kind, or an object without the discriminator, is kept whole
//! as a `serde_json::Value`, as before.

use std::borrow::Cow;
use std::fmt;
use std::marker::PhantomData;

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};

/// Keys read before a union's discriminator, with their values. A key is borrowed from the input
/// when it holds no escape, and a value is read as a `Value` once: a string then moves into its
/// field without a copy, where holding the text and parsing it again once the kind is known cost
/// an allocation and a second parse for each key.
pub(crate) type Pending<'de> = Vec<(Cow<'de, str>, Value)>;

/// What a generated object has read so far; filled key by key, then turned into the object.
pub(crate) trait DecodeObject: Default {
    /// The object this builds.
    type Output;
    /// The object's name, for error messages.
    const NAME: &'static str;
    /// The index of a key the object knows.
    fn field_index(key: &str) -> Option<usize>;
    /// Reads the value of the known field `index`.
    fn decode_field<'de, D: Deserializer<'de>>(
        &mut self,
        index: usize,
        deserializer: D,
    ) -> Result<(), D::Error>;
    /// Where unknown keys go.
    fn extra(&mut self) -> &mut Map<String, Value>;
    /// The object, or the error for a required key that never came.
    fn finish<E: de::Error>(self) -> Result<Self::Output, E>;
}

/// A union told apart by a key that may come anywhere in the object.
pub(crate) trait DecodeUnion: Sized {
    /// The discriminator's key.
    const PROPERTY: &'static str;
    /// The kinds the spec lists.
    const KINDS: &'static [&'static str];
    /// Decodes a kind of [`DecodeUnion::KINDS`] from the keys read before the discriminator (the
    /// discriminator included) and the rest of the map.
    fn decode_kind<'de, A: MapAccess<'de>>(
        kind: &str,
        pending: Pending<'de>,
        map: &mut A,
    ) -> Result<Self, A::Error>;
    /// A kind the spec does not list, kept as sent.
    fn unknown(value: Value) -> Self;
}

/// Fills `slot` once; serde's derive refuses a key sent twice, and so does this.
pub(crate) fn set_once<'de, T, D>(
    slot: &mut Option<T>,
    key: &'static str,
    deserializer: D,
) -> Result<(), D::Error>
where
    T: de::Deserialize<'de>,
    D: Deserializer<'de>,
{
    if slot.is_some() {
        return Err(de::Error::duplicate_field(key));
    }
    *slot = Some(T::deserialize(deserializer)?);
    Ok(())
}

/// A key, matched against the object's known keys as it is read so that known keys are never copied.
enum Key {
    Known(usize),
    Unknown(String),
}

struct KeySeed<F>(PhantomData<F>);

impl<'de, F: DecodeObject> DeserializeSeed<'de> for KeySeed<F> {
    type Value = Key;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Key, D::Error> {
        deserializer.deserialize_identifier(self)
    }
}

impl<'de, F: DecodeObject> Visitor<'de> for KeySeed<F> {
    type Value = Key;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Key, E> {
        Ok(match F::field_index(key) {
            Some(index) => Key::Known(index),
            None => Key::Unknown(key.to_owned()),
        })
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Key, E> {
        Ok(match F::field_index(&key) {
            Some(index) => Key::Known(index),
            None => Key::Unknown(key),
        })
    }
}

/// Reads the value of a known field straight into the fields struct.
struct FieldSeed<'a, F> {
    fields: &'a mut F,
    index: usize,
}

impl<'de, F: DecodeObject> DeserializeSeed<'de> for FieldSeed<'_, F> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        self.fields.decode_field(self.index, deserializer)
    }
}

/// Reads the rest of `map` into `fields`.
fn decode_entries<'de, F: DecodeObject, A: MapAccess<'de>>(
    fields: &mut F,
    map: &mut A,
) -> Result<(), A::Error> {
    while let Some(key) = map.next_key_seed(KeySeed::<F>(PhantomData))? {
        match key {
            Key::Known(index) => map.next_value_seed(FieldSeed { fields, index })?,
            Key::Unknown(key) => {
                let value = map.next_value::<Value>()?;
                fields.extra().insert(key, value);
            }
        }
    }
    Ok(())
}

/// The visitor behind each generated object's `Deserialize`.
pub(crate) struct ObjectVisitor<F>(PhantomData<F>);

impl<F> ObjectVisitor<F> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, F: DecodeObject> Visitor<'de> for ObjectVisitor<F> {
    type Value = F::Output;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object ({})", F::NAME)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<F::Output, A::Error> {
        let mut fields = F::default();
        decode_entries(&mut fields, &mut map)?;
        fields.finish()
    }
}

/// Decodes one known kind of a union: first the keys read before the discriminator, then the rest.
pub(crate) fn decode_variant<'de, F: DecodeObject, A: MapAccess<'de>>(
    pending: Pending<'de>,
    map: &mut A,
) -> Result<F::Output, A::Error> {
    let mut fields = F::default();
    for (key, value) in pending {
        match F::field_index(&key) {
            Some(index) => fields
                .decode_field(index, value)
                .map_err(<A::Error as de::Error>::custom)?,
            None => {
                fields.extra().insert(key.into_owned(), value);
            }
        }
    }
    decode_entries(&mut fields, map)?;
    fields.finish()
}

/// A union's key, borrowed from the input when it can be.
struct CowKey;

impl<'de> DeserializeSeed<'de> for CowKey {
    type Value = Cow<'de, str>;

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<Self::Value, D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl<'de> Visitor<'de> for CowKey {
    type Value = Cow<'de, str>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a key")
    }

    fn visit_borrowed_str<E: de::Error>(self, key: &'de str) -> Result<Self::Value, E> {
        Ok(Cow::Borrowed(key))
    }

    fn visit_str<E: de::Error>(self, key: &str) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key.to_owned()))
    }

    fn visit_string<E: de::Error>(self, key: String) -> Result<Self::Value, E> {
        Ok(Cow::Owned(key))
    }
}

/// The visitor behind each generated union's `Deserialize`. Anything that is not an object is an
/// unknown kind, kept as sent, as it was when unions decoded through a `Value`.
pub(crate) struct UnionVisitor<U>(PhantomData<U>);

impl<U> UnionVisitor<U> {
    pub(crate) fn new() -> Self {
        Self(PhantomData)
    }
}

impl<'de, U: DecodeUnion> Visitor<'de> for UnionVisitor<U> {
    type Value = U;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "an object with `{}`", U::PROPERTY)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<U, A::Error> {
        let mut pending = Pending::new();
        while let Some(key) = map.next_key_seed(CowKey)? {
            let value = map.next_value::<Value>()?;
            let known = (key == U::PROPERTY)
                .then(|| value.as_str())
                .flatten()
                .and_then(|kind| U::KINDS.iter().find(|known| **known == kind))
                .copied();
            pending.push((key, value));
            if let Some(kind) = known {
                return U::decode_kind(kind, pending, &mut map);
            }
        }
        // No discriminator, or one the spec does not list: keep the object whole.
        let mut object = Map::new();
        for (key, value) in pending {
            object.insert(key.into_owned(), value);
        }
        while let Some((key, value)) = map.next_entry::<String, Value>()? {
            object.insert(key, value);
        }
        Ok(U::unknown(Value::Object(object)))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<U, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Value>()? {
            items.push(item);
        }
        Ok(U::unknown(Value::Array(items)))
    }

    fn visit_str<E: de::Error>(self, value: &str) -> Result<U, E> {
        Ok(U::unknown(Value::String(value.to_owned())))
    }

    fn visit_string<E: de::Error>(self, value: String) -> Result<U, E> {
        Ok(U::unknown(Value::String(value)))
    }

    fn visit_bool<E: de::Error>(self, value: bool) -> Result<U, E> {
        Ok(U::unknown(Value::Bool(value)))
    }

    fn visit_i64<E: de::Error>(self, value: i64) -> Result<U, E> {
        Ok(U::unknown(Value::from(value)))
    }

    fn visit_u64<E: de::Error>(self, value: u64) -> Result<U, E> {
        Ok(U::unknown(Value::from(value)))
    }

    fn visit_f64<E: de::Error>(self, value: f64) -> Result<U, E> {
        Ok(U::unknown(Value::from(value)))
    }

    fn visit_unit<E: de::Error>(self) -> Result<U, E> {
        Ok(U::unknown(Value::Null))
    }

    fn visit_none<E: de::Error>(self) -> Result<U, E> {
        Ok(U::unknown(Value::Null))
    }
}
