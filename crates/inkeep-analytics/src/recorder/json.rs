//! The JSON writer of the recording call: serde_json's compact output, byte for byte, with strings
//! scanned for escapes eight bytes at a time. Escaping message text one byte at a time was half of
//! a recording call's cost; anything this writer does not handle goes to serde_json itself.

use std::fmt;

use serde::Serialize;
use serde::ser::{self, Impossible};

/// `value` as compact JSON, exactly as `serde_json::to_vec` writes it, in a buffer of its exact
/// size.
///
/// It is written into a buffer the thread keeps, then copied once into one of the right size: a
/// buffer grown as it is written would be copied at each doubling, and shrunk (copied again) so
/// that the queue, which bounds the bytes it holds, holds no more than the body.
pub(crate) fn to_vec<T: Serialize + ?Sized>(value: &T) -> serde_json::Result<Vec<u8>> {
    thread_local! {
        static SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    }
    let written = SCRATCH.with(|scratch| {
        // Taken only by a record whose `Serialize` records another from inside itself.
        let Ok(mut kept) = scratch.try_borrow_mut() else {
            return write_into(value, Vec::new());
        };
        let buffer = write_into(value, std::mem::take(&mut *kept))?;
        let body = buffer.clone();
        // One very large record must not keep its buffer for the thread's life.
        if buffer.capacity() <= MAX_KEPT_SCRATCH_BYTES {
            *kept = buffer;
            kept.clear();
        }
        Ok(body)
    });
    match written {
        Ok(body) => Ok(body),
        // A shape this writer leaves to serde_json (a raw value, a map key that is not a string)
        // or a value that cannot be serialized at all, which serde_json then reports.
        Err(Unsupported) => serde_json::to_vec(value),
    }
}

/// The largest scratch buffer a thread keeps between records.
const MAX_KEPT_SCRATCH_BYTES: usize = 256 * 1024;

fn write_into<T: Serialize + ?Sized>(value: &T, out: Vec<u8>) -> Result<Vec<u8>> {
    let mut writer = Writer { out };
    value.serialize(&mut writer)?;
    Ok(writer.out)
}

/// Why the fast path gave up; serde_json then serializes the value and reports any real error.
#[derive(Debug)]
pub(crate) struct Unsupported;

impl fmt::Display for Unsupported {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("left to serde_json")
    }
}

impl std::error::Error for Unsupported {}

impl ser::Error for Unsupported {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Unsupported
    }
}

type Result<T = ()> = std::result::Result<T, Unsupported>;

struct Writer {
    out: Vec<u8>,
}

/// The name serde_json gives the struct a `RawValue` serializes as.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// What a byte is written as inside a JSON string: 0 for itself, else the letter after `\`
/// (`u` for `\u00XX`), as serde_json escapes.
static ESCAPE: [u8; 256] = {
    let mut table = [0u8; 256];
    let mut byte = 0;
    while byte < 0x20 {
        table[byte] = b'u';
        byte += 1;
    }
    table[0x08] = b'b';
    table[0x09] = b't';
    table[0x0A] = b'n';
    table[0x0C] = b'f';
    table[0x0D] = b'r';
    table[b'"' as usize] = b'"';
    table[b'\\' as usize] = b'\\';
    table
};

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The high bit of each of the eight bytes that may need escaping: a control byte, `"` or `\`.
/// A borrow may mark a byte after one that does, never one in a word that needs none.
#[inline]
fn escape_mask(word: u64) -> u64 {
    let control = word.wrapping_sub(ONES * 0x20) & !word;
    let quote = word ^ (ONES * u64::from(b'"'));
    let backslash = word ^ (ONES * u64::from(b'\\'));
    let zero_in = |v: u64| v.wrapping_sub(ONES) & !v;
    (control | zero_in(quote) | zero_in(backslash)) & HIGHS
}

/// Eight bytes from `at`, when there are eight.
#[inline]
fn word_at(bytes: &[u8], at: usize) -> Option<u64> {
    let chunk = bytes.get(at..at.checked_add(8)?)?;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    Some(u64::from_le_bytes(word))
}

fn write_escaped(out: &mut Vec<u8>, value: &str) {
    let bytes = value.as_bytes();
    out.reserve(bytes.len() + 2);
    out.push(b'"');
    // The start of the run of bytes not yet copied.
    let mut start = 0;
    let mut at = 0;
    loop {
        // Sixteen bytes at a time, then eight, while none may need escaping.
        while let (Some(a), Some(b)) = (word_at(bytes, at), word_at(bytes, at + 8)) {
            if escape_mask(a) | escape_mask(b) != 0 {
                break;
            }
            at += 16;
        }
        if let Some(word) = word_at(bytes, at)
            && escape_mask(word) == 0
        {
            at += 8;
        }
        if at >= bytes.len() {
            break;
        }
        if bytes.len() - at < 8 {
            // The tail: most strings end clean. In a string of eight bytes or more, its last eight
            // bytes cover it (the ones before it are clean or written); a shorter one is padded
            // with spaces, which need no escaping.
            let word = match bytes
                .len()
                .checked_sub(8)
                .and_then(|last| word_at(bytes, last))
            {
                Some(word) => word,
                None => {
                    let mut word = [b' '; 8];
                    for (padded, byte) in word.iter_mut().zip(&bytes[at..]) {
                        *padded = *byte;
                    }
                    u64::from_le_bytes(word)
                }
            };
            if escape_mask(word) == 0 {
                break;
            }
        }
        // One of the next eight bytes (or fewer, at the end) may need escaping.
        let end = (at + 8).min(bytes.len());
        while at < end {
            let byte = bytes[at];
            let escape = ESCAPE[usize::from(byte)];
            if escape != 0 {
                out.extend_from_slice(&bytes[start..at]);
                start = at + 1;
                if escape == b'u' {
                    const HEX: &[u8; 16] = b"0123456789abcdef";
                    out.extend_from_slice(&[
                        b'\\',
                        b'u',
                        b'0',
                        b'0',
                        HEX[usize::from(byte >> 4)],
                        HEX[usize::from(byte & 0xF)],
                    ]);
                } else {
                    out.extend_from_slice(&[b'\\', escape]);
                }
            }
            at += 1;
        }
    }
    out.extend_from_slice(&bytes[start..]);
    out.push(b'"');
}

impl Writer {
    /// Floats as serde_json formats them, whichever formatter its version uses.
    fn float<F: Serialize>(&mut self, value: F) -> Result {
        serde_json::to_writer(&mut self.out, &value).map_err(|_| Unsupported)
    }

    fn integer<I: itoa::Integer>(&mut self, value: I) -> Result {
        self.out
            .extend_from_slice(itoa::Buffer::new().format(value).as_bytes());
        Ok(())
    }
}

impl<'a> ser::Serializer for &'a mut Writer {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Compound<'a>;
    type SerializeTuple = Compound<'a>;
    type SerializeTupleStruct = Compound<'a>;
    type SerializeTupleVariant = Compound<'a>;
    type SerializeMap = Compound<'a>;
    type SerializeStruct = Compound<'a>;
    type SerializeStructVariant = Compound<'a>;

    fn serialize_bool(self, value: bool) -> Result {
        self.out
            .extend_from_slice(if value { b"true" } else { b"false" });
        Ok(())
    }
    fn serialize_i8(self, value: i8) -> Result {
        self.integer(value)
    }
    fn serialize_i16(self, value: i16) -> Result {
        self.integer(value)
    }
    fn serialize_i32(self, value: i32) -> Result {
        self.integer(value)
    }
    fn serialize_i64(self, value: i64) -> Result {
        self.integer(value)
    }
    fn serialize_i128(self, value: i128) -> Result {
        self.integer(value)
    }
    fn serialize_u8(self, value: u8) -> Result {
        self.integer(value)
    }
    fn serialize_u16(self, value: u16) -> Result {
        self.integer(value)
    }
    fn serialize_u32(self, value: u32) -> Result {
        self.integer(value)
    }
    fn serialize_u64(self, value: u64) -> Result {
        self.integer(value)
    }
    fn serialize_u128(self, value: u128) -> Result {
        self.integer(value)
    }
    fn serialize_f32(self, value: f32) -> Result {
        self.float(value)
    }
    fn serialize_f64(self, value: f64) -> Result {
        self.float(value)
    }
    fn serialize_char(self, value: char) -> Result {
        write_escaped(&mut self.out, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_str(self, value: &str) -> Result {
        write_escaped(&mut self.out, value);
        Ok(())
    }
    fn serialize_bytes(self, value: &[u8]) -> Result {
        use ser::SerializeSeq;
        let mut seq = self.serialize_seq(Some(value.len()))?;
        for byte in value {
            seq.serialize_element(byte)?;
        }
        seq.end()
    }
    fn serialize_none(self) -> Result {
        self.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result {
        self.out.extend_from_slice(b"null");
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result {
        self.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result {
        self.out.push(b'{');
        write_escaped(&mut self.out, variant);
        self.out.push(b':');
        value.serialize(&mut *self)?;
        self.out.push(b'}');
        Ok(())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.out.push(b'[');
        Ok(Compound::new(self, b"]"))
    }
    fn serialize_tuple(self, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(self, _name: &'static str, len: usize) -> Result<Compound<'a>> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        self.out.push(b'{');
        write_escaped(&mut self.out, variant);
        self.out.extend_from_slice(b":[");
        Ok(Compound::new(self, b"]}"))
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Compound<'a>> {
        self.out.push(b'{');
        Ok(Compound::new(self, b"}"))
    }
    fn serialize_struct(self, name: &'static str, len: usize) -> Result<Compound<'a>> {
        if name == RAW_VALUE_TOKEN {
            return Err(Unsupported);
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        _len: usize,
    ) -> Result<Compound<'a>> {
        self.out.push(b'{');
        write_escaped(&mut self.out, variant);
        self.out.extend_from_slice(b":{");
        Ok(Compound::new(self, b"}}"))
    }
}

/// An array or object being written: commas between its entries, `close` after them.
pub(crate) struct Compound<'a> {
    writer: &'a mut Writer,
    first: bool,
    close: &'static [u8],
}

impl<'a> Compound<'a> {
    fn new(writer: &'a mut Writer, close: &'static [u8]) -> Self {
        Self {
            writer,
            first: true,
            close,
        }
    }

    fn comma(&mut self) {
        if !self.first {
            self.writer.out.push(b',');
        }
        self.first = false;
    }

    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.comma();
        value.serialize(&mut *self.writer)
    }

    fn field<T: Serialize + ?Sized>(&mut self, key: &str, value: &T) -> Result {
        self.comma();
        write_escaped(&mut self.writer.out, key);
        self.writer.out.push(b':');
        value.serialize(&mut *self.writer)
    }

    fn close(self) -> Result {
        self.writer.out.extend_from_slice(self.close);
        Ok(())
    }
}

impl ser::SerializeSeq for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

impl ser::SerializeTuple for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

impl ser::SerializeTupleStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

impl ser::SerializeTupleVariant for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.element(value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

impl ser::SerializeMap for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result {
        self.comma();
        key.serialize(KeyWriter(&mut self.writer.out))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result {
        self.writer.out.push(b':');
        value.serialize(&mut *self.writer)
    }
    fn end(self) -> Result {
        self.close()
    }
}

impl ser::SerializeStruct for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field(key, value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

impl ser::SerializeStructVariant for Compound<'_> {
    type Ok = ();
    type Error = Unsupported;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, key: &'static str, value: &T) -> Result {
        self.field(key, value)
    }
    fn end(self) -> Result {
        self.close()
    }
}

/// A map key: strings (and what serializes as one) only; serde_json's other key rules are its own.
struct KeyWriter<'a>(&'a mut Vec<u8>);

macro_rules! left_to_serde_json {
    ($($method:ident($($arg:ty),*);)*) => {
        $(fn $method(self, $(_: $arg),*) -> Result { Err(Unsupported) })*
    };
}

impl ser::Serializer for KeyWriter<'_> {
    type Ok = ();
    type Error = Unsupported;
    type SerializeSeq = Impossible<(), Unsupported>;
    type SerializeTuple = Impossible<(), Unsupported>;
    type SerializeTupleStruct = Impossible<(), Unsupported>;
    type SerializeTupleVariant = Impossible<(), Unsupported>;
    type SerializeMap = Impossible<(), Unsupported>;
    type SerializeStruct = Impossible<(), Unsupported>;
    type SerializeStructVariant = Impossible<(), Unsupported>;

    fn serialize_str(self, value: &str) -> Result {
        write_escaped(self.0, value);
        Ok(())
    }
    fn serialize_char(self, value: char) -> Result {
        write_escaped(self.0, value.encode_utf8(&mut [0; 4]));
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result {
        self.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result {
        value.serialize(self)
    }
    left_to_serde_json! {
        serialize_bool(bool); serialize_i8(i8); serialize_i16(i16); serialize_i32(i32);
        serialize_i64(i64); serialize_i128(i128); serialize_u8(u8); serialize_u16(u16);
        serialize_u32(u32); serialize_u64(u64); serialize_u128(u128); serialize_f32(f32);
        serialize_f64(f64); serialize_bytes(&[u8]); serialize_none(); serialize_unit();
        serialize_unit_struct(&'static str);
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result {
        Err(Unsupported)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result {
        Err(Unsupported)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq> {
        Err(Unsupported)
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple> {
        Err(Unsupported)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct> {
        Err(Unsupported)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant> {
        Err(Unsupported)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap> {
        Err(Unsupported)
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self::SerializeStruct> {
        Err(Unsupported)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant> {
        Err(Unsupported)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use serde_json::{Value, json};

    fn same_as_serde_json<T: Serialize + ?Sized>(value: &T) {
        let ours = to_vec(value).map_err(|e| e.to_string());
        let theirs = serde_json::to_vec(value).map_err(|e| e.to_string());
        assert_eq!(
            ours.as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned()),
            theirs
                .as_ref()
                .map(|b| String::from_utf8_lossy(b).into_owned())
        );
    }

    #[test]
    fn every_byte_that_needs_escaping_is_escaped_as_serde_json_does() {
        let every_ascii: String = (0u8..0x80).map(char::from).collect();
        same_as_serde_json(&every_ascii);
        // Each escape at every position of an eight-byte word, beside multi-byte characters.
        for byte in (0u8..0x20).chain([b'"', b'\\', 0x7F]) {
            for at in 0..17 {
                let text = format!("{}{}é日本語🙂abcdefghij", "a".repeat(at), char::from(byte));
                same_as_serde_json(&text);
            }
        }
    }

    #[test]
    fn values_of_every_shape_are_written_as_serde_json_writes_them() {
        same_as_serde_json(&json!({
            "id": "conv_1", "n": -12, "big": u64::MAX, "f": 1.5e300, "tiny": 5e-324,
            "nested": {"list": [1, 2.0, null, true, false, "x\n\"y\""], "empty": {}, "none": []},
            "unicode": "مرحبا \u{0} \u{1f} 🙂",
        }));
        same_as_serde_json(&f64::NAN);
        same_as_serde_json(&f32::INFINITY);
        same_as_serde_json(&Some('"'));
        same_as_serde_json(&(1u8, "two", [3i128]));
        same_as_serde_json(&std::collections::BTreeMap::from([("k\t", vec![b'a'])]));
        // Keys that are not strings are serde_json's to write (or to refuse).
        same_as_serde_json(&std::collections::BTreeMap::from([(1, "one")]));
        same_as_serde_json(&std::collections::BTreeMap::from([(true, "yes")]));
        same_as_serde_json(&std::collections::BTreeMap::from([(vec![1], "no")]));
        let raw = serde_json::value::RawValue::from_string(r#"{"kept" : [1,  2]}"#.into())
            .map_err(|e| e.to_string());
        same_as_serde_json(&raw.ok());
    }

    #[test]
    fn the_records_a_service_sends_are_written_as_serde_json_writes_them() {
        use crate::types::{CreateOpenAiConversation, CreateOpenAiMessage, FeedbackInput};
        let conversation = CreateOpenAiConversation::new(vec![
            CreateOpenAiMessage::user("¿Cómo configuro el widget?\n\t\"quoted\""),
            CreateOpenAiMessage::assistant("设置 → 集成 → 粘贴代码片段 🙂"),
        ]);
        same_as_serde_json(&crate::types::CreateConversation::from(conversation));
        let feedback: FeedbackInput = serde_json::from_value(json!({
            "type": "negative", "messageId": "m1", "details": null,
            "reasons": [{"label": "inaccurate", "details": "wrong \u{7} bell"}],
            "properties": {"score": 0.25, "tags": ["a", "b"]},
        }))
        .map_err(|e| e.to_string())
        .unwrap_or_else(|e| panic!("{e}"));
        same_as_serde_json(&feedback);
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::from),
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            any::<f64>().prop_map(Value::from),
            any::<String>().prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..8).prop_map(Value::from),
                prop::collection::btree_map(any::<String>(), inner, 0..8)
                    .prop_map(|map| Value::Object(map.into_iter().collect())),
            ]
        })
    }

    proptest! {
        #[test]
        fn any_string_is_written_as_serde_json_writes_it(text in any::<String>()) {
            prop_assert_eq!(to_vec(&text).ok(), serde_json::to_vec(&text).ok());
        }

        /// Escapes at every position of the sixteen- and eight-byte steps and of the padded tail.
        #[test]
        fn strings_dense_with_escapes_are_written_as_serde_json_writes_them(
            text in prop::collection::vec(
                prop::sample::select(vec!['a', ' ', '"', '\\', '\n', '\u{1}', '\u{1f}', '\u{7f}', 'é', '語']),
                0..48,
            ).prop_map(|chars| chars.into_iter().collect::<String>())
        ) {
            prop_assert_eq!(to_vec(&text).ok(), serde_json::to_vec(&text).ok());
        }

        #[test]
        fn any_json_value_is_written_as_serde_json_writes_it(value in json_value()) {
            prop_assert_eq!(to_vec(&value).ok(), serde_json::to_vec(&value).ok());
        }
    }
}
