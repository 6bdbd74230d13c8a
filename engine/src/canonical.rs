//! AURA canonical encoding, version 1 (AURA-CE/1).
//!
//! Everything AURA signs or hashes goes through this one encoding, never
//! through JSON: JSON has no single byte form for a value (key order,
//! whitespace, number spelling), so two honest parties could disagree about
//! what was signed. The rules are in `docs/canonical-encoding.md`; in short:
//!
//! * integers are fixed-width big-endian, `bool` is one byte, floats are
//!   IEEE-754 big-endian (NaN refused, `-0.0` folded into `0.0`);
//! * strings, byte strings and sequences carry a `u32` big-endian length;
//! * `Option` is a `0`/`1` tag, enum variants a `u32` index;
//! * struct fields are written in declaration order with no names, so a
//!   skipped field is refused (its absence would be ambiguous);
//! * map entries are sorted by the bytes of their encoded key, so the map
//!   type (and its iteration order) does not matter; duplicate keys are
//!   refused.
//!
//! A message that is hashed or signed is framed as
//! `"AURA-CE/1" 0x00 len(domain):u8 domain encoding`, where the domain names
//! the kind of object and its schema version (for example
//! `aura.credential/1`). Changing a type's fields means a new domain version.

use serde::ser::{self, Serialize};
use sha2::{Digest as _, Sha256};

use crate::digest::Digest;

mod json_shape;

const MAGIC: &[u8] = b"AURA-CE/1\0";

/// A domain-separation label: what kind of object is being hashed or signed,
/// with its schema version.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Domain(&'static str);

impl Domain {
    pub const fn new(label: &'static str) -> Self {
        assert!(label.len() < 256, "domain labels are at most 255 bytes");
        Domain(label)
    }

    pub fn label(&self) -> &'static str {
        self.0
    }
}

/// Why a value has no canonical encoding.
#[derive(Clone, Debug, thiserror::Error, PartialEq, Eq)]
pub enum CanonicalError {
    #[error("NaN has no canonical encoding")]
    NaN,
    #[error("a length of {0} does not fit the u32 length prefix")]
    TooLong(usize),
    #[error("map has two entries with the same key")]
    DuplicateKey,
    #[error("struct field `{0}` was skipped; canonical structs have a fixed shape")]
    SkippedField(&'static str),
    #[error("{0}")]
    Custom(String),
}

impl ser::Error for CanonicalError {
    fn custom<T: std::fmt::Display>(msg: T) -> Self {
        CanonicalError::Custom(msg.to_string())
    }
}

/// The canonical bytes of `value`, without domain framing.
pub fn to_bytes<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut enc = Encoder::new(128);
    value.serialize(&mut enc)?;
    Ok(enc.out)
}

/// The framed message for `value` in `domain`: the exact bytes that are
/// signed, and whose SHA-256 is the object's digest.
pub fn message<T: Serialize + ?Sized>(
    domain: Domain,
    value: &T,
) -> Result<Vec<u8>, CanonicalError> {
    let mut enc = Encoder::new(160);
    frame_into(domain, &mut enc.out);
    value.serialize(&mut enc)?;
    Ok(enc.out)
}

/// SHA-256 of the framed message for `value` in `domain`.
pub fn digest<T: Serialize + ?Sized>(domain: Domain, value: &T) -> Result<Digest, CanonicalError> {
    Ok(Digest::of(&message(domain, value)?))
}

/// The canonical bytes of the JSON form of `value`: the bytes of
/// `serde_json::to_value(value)`, without building that value.
pub fn to_bytes_as_json<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, CanonicalError> {
    let mut enc = Encoder::new(256);
    value.serialize(json_shape::Shaped(&mut enc))?;
    Ok(enc.out)
}

/// SHA-256 of the framed message of bytes that are already canonical.
pub fn digest_encoded(domain: Domain, encoded: &[u8]) -> Digest {
    let mut hasher = framed_hasher(domain);
    hasher.update(encoded);
    Digest(hasher.finalize().into())
}

/// SHA-256 of the framed message of a sequence of `count` elements whose
/// canonical encodings lie back to back in `parts`: the digest of the
/// sequence, from pieces that can be encoded once and shared.
pub fn digest_encoded_seq(
    domain: Domain,
    count: usize,
    parts: &[&[u8]],
) -> Result<Digest, CanonicalError> {
    let mut hasher = framed_hasher(domain);
    hasher.update(len_u32(count)?);
    for part in parts {
        hasher.update(part);
    }
    Ok(Digest(hasher.finalize().into()))
}

fn framed_hasher(domain: Domain) -> Sha256 {
    let mut hasher = Sha256::new();
    write_frame(domain, |b| hasher.update(b));
    hasher
}

/// Bytes that are already the canonical encoding of a value, written as
/// they are in its place: a value that never changes is encoded once and
/// its bytes reused. Only the canonical encoder knows this form; it must
/// not be handed to any other serializer.
pub(crate) struct Encoded<'a>(pub &'a [u8]);

/// A sequence of `count` elements whose canonical encodings lie back to
/// back in `parts`, written as that sequence: its count, then the parts as
/// they are.
pub(crate) struct EncodedSeq<'a> {
    pub count: usize,
    pub parts: &'a [&'a [u8]],
}

impl Serialize for EncodedSeq<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        use ser::SerializeTuple;
        let count = len_u32(self.count).map_err(ser::Error::custom)?;
        // A tuple adds nothing of its own to the encoding.
        let mut tuple = s.serialize_tuple(1 + self.parts.len())?;
        tuple.serialize_element(&Encoded(&count))?;
        for part in self.parts {
            tuple.serialize_element(&Encoded(part))?;
        }
        tuple.end()
    }
}

/// The newtype name by which [`Encoded`] reaches the encoder, the way
/// `serde_json` passes its raw values.
const ENCODED: &str = "$aura::canonical::Encoded";

impl Serialize for Encoded<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_newtype_struct(ENCODED, &Verbatim(self.0))
    }
}

/// The inside of [`Encoded`]: its bytes, offered as a byte string.
struct Verbatim<'a>(&'a [u8]);

impl Serialize for Verbatim<'_> {
    fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_bytes(self.0)
    }
}

/// Writes the AURA-CE/1 bytes of a fixed layout by hand into a reusable
/// buffer, for hot paths (audit entries) where serde's generic machinery
/// costs more than the hash. Each user must be tested against [`digest`] so
/// the two can never drift apart.
#[derive(Debug)]
pub struct DirectHasher<'a> {
    out: &'a mut Vec<u8>,
}

impl<'a> DirectHasher<'a> {
    /// Starts a message in `domain`, reusing `buf`'s allocation.
    pub fn new(domain: Domain, buf: &'a mut Vec<u8>) -> Self {
        buf.clear();
        frame_into(domain, buf);
        DirectHasher { out: buf }
    }
    pub fn u8(&mut self, v: u8) {
        self.out.push(v);
    }
    pub fn u32(&mut self, v: u32) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn u64(&mut self, v: u64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    pub fn i64(&mut self, v: i64) {
        self.out.extend_from_slice(&v.to_be_bytes());
    }
    /// A string or byte string: `u32` length, then the bytes.
    pub fn bytes(&mut self, v: &[u8]) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&len_u32(v.len())?);
        self.out.extend_from_slice(v);
        Ok(())
    }
    pub fn finish(self) -> Digest {
        Digest(Sha256::digest(&self.out[..]).into())
    }
}

fn frame_into(domain: Domain, out: &mut Vec<u8>) {
    write_frame(domain, |b| out.extend_from_slice(b));
}

/// The frame's bytes, in order, to wherever a message is being written.
fn write_frame(domain: Domain, mut put: impl FnMut(&[u8])) {
    put(MAGIC);
    put(&[domain.0.len() as u8]);
    put(domain.0.as_bytes());
}

fn len_u32(len: usize) -> Result<[u8; 4], CanonicalError> {
    u32::try_from(len)
        .map(u32::to_be_bytes)
        .map_err(|_| CanonicalError::TooLong(len))
}

struct Encoder {
    out: Vec<u8>,
    /// Set by [`Encoded`]: the next byte string is written without its
    /// length, as the encoding it already is.
    verbatim: bool,
    /// Where the entries of the maps being written lie in `out`, innermost
    /// map last; a map sorts its own entries in place when it ends.
    spans: Vec<EntrySpan>,
    /// Room to put a map's entries in order, reused by every map.
    scratch: Vec<u8>,
}

/// One map entry's bytes in the encoder's output: the key from `key`, the
/// value from `value`, up to `end`.
#[derive(Clone, Copy)]
struct EntrySpan {
    key: usize,
    value: usize,
    end: usize,
}

impl Encoder {
    fn new(capacity: usize) -> Encoder {
        Encoder {
            out: Vec::with_capacity(capacity),
            verbatim: false,
            spans: Vec::new(),
            scratch: Vec::new(),
        }
    }

    fn put_len(&mut self, len: usize) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&len_u32(len)?);
        Ok(())
    }
}

/// Sequences may not announce their length up front, so the count is
/// patched in once the last element is written.
struct SeqEncoder<'a> {
    enc: &'a mut Encoder,
    count_at: usize,
    count: usize,
}

impl SeqEncoder<'_> {
    fn finish(self) -> Result<(), CanonicalError> {
        let bytes = len_u32(self.count)?;
        self.enc.out[self.count_at..self.count_at + 4].copy_from_slice(&bytes);
        Ok(())
    }
}

/// Entries are written straight into the output, after a count patched
/// in at the end, and then put in key order where they lie: no buffer per
/// entry, and a nested map's bytes are moved once per level, not copied
/// into every enclosing map's entry list.
struct MapEncoder<'a> {
    enc: &'a mut Encoder,
    count_at: usize,
    /// This map's first entry in `enc.spans`.
    first: usize,
    pending_key: Option<usize>,
}

impl<'a> ser::Serializer for &'a mut Encoder {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = SeqEncoder<'a>;
    type SerializeTuple = Self;
    type SerializeTupleStruct = Self;
    type SerializeTupleVariant = Self;
    type SerializeMap = MapEncoder<'a>;
    type SerializeStruct = Self;
    type SerializeStructVariant = Self;

    fn serialize_bool(self, v: bool) -> Result<(), CanonicalError> {
        self.out.push(u8::from(v));
        Ok(())
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_i128(self, v: i128) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonicalError> {
        self.out.push(v);
        Ok(())
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_u128(self, v: u128) -> Result<(), CanonicalError> {
        self.out.extend_from_slice(&v.to_be_bytes());
        Ok(())
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonicalError> {
        self.serialize_f64(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonicalError> {
        if v.is_nan() {
            return Err(CanonicalError::NaN);
        }
        let v = if v == 0.0 { 0.0 } else { v };
        self.out.extend_from_slice(&v.to_bits().to_be_bytes());
        Ok(())
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalError> {
        self.serialize_u32(u32::from(v))
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonicalError> {
        self.serialize_bytes(v.as_bytes())
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CanonicalError> {
        if !std::mem::take(&mut self.verbatim) {
            self.put_len(v.len())?;
        }
        self.out.extend_from_slice(v);
        Ok(())
    }
    fn serialize_none(self) -> Result<(), CanonicalError> {
        self.out.push(0);
        Ok(())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CanonicalError> {
        self.out.push(1);
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonicalError> {
        Ok(())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CanonicalError> {
        Ok(())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
    ) -> Result<(), CanonicalError> {
        self.serialize_u32(index)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        // Only `Encoded` uses this name, and its value is a byte string.
        self.verbatim = name == ENCODED;
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.serialize_u32(index)?;
        value.serialize(self)
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, CanonicalError> {
        let count_at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        Ok(SeqEncoder {
            enc: self,
            count_at,
            count: 0,
        })
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self, CanonicalError> {
        Ok(self)
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self, CanonicalError> {
        Ok(self)
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, CanonicalError> {
        self.serialize_u32(index)?;
        Ok(self)
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, CanonicalError> {
        let count_at = self.out.len();
        self.out.extend_from_slice(&[0; 4]);
        let first = self.spans.len();
        Ok(MapEncoder {
            enc: self,
            count_at,
            first,
            pending_key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Self, CanonicalError> {
        Ok(self)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self, CanonicalError> {
        self.serialize_u32(index)?;
        Ok(self)
    }
    fn is_human_readable(&self) -> bool {
        false
    }
}

impl ser::SerializeSeq for SeqEncoder<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_element<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.count += 1;
        value.serialize(&mut *self.enc)
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.finish()
    }
}

impl ser::SerializeTuple for &mut Encoder {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_element<T: Serialize + ?Sized>(
        &mut self,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), CanonicalError> {
        Ok(())
    }
}

impl ser::SerializeTupleStruct for &mut Encoder {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), CanonicalError> {
        Ok(())
    }
}

impl ser::SerializeTupleVariant for &mut Encoder {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        value.serialize(&mut **self)
    }
    fn end(self) -> Result<(), CanonicalError> {
        Ok(())
    }
}

impl ser::SerializeStruct for &mut Encoder {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(&mut **self)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), CanonicalError> {
        Err(CanonicalError::SkippedField(key))
    }
    fn end(self) -> Result<(), CanonicalError> {
        Ok(())
    }
}

impl ser::SerializeStructVariant for &mut Encoder {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        _key: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(&mut **self)
    }
    fn skip_field(&mut self, key: &'static str) -> Result<(), CanonicalError> {
        Err(CanonicalError::SkippedField(key))
    }
    fn end(self) -> Result<(), CanonicalError> {
        Ok(())
    }
}

impl ser::SerializeMap for MapEncoder<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonicalError> {
        self.pending_key = Some(self.enc.out.len());
        key.serialize(&mut *self.enc)
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        self.value_with(|enc| value.serialize(enc))
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.finish()
    }
}

impl MapEncoder<'_> {
    /// Writes the value of the entry whose key was just written, with
    /// `write`, and records the entry.
    fn value_with(
        &mut self,
        write: impl FnOnce(&mut Encoder) -> Result<(), CanonicalError>,
    ) -> Result<(), CanonicalError> {
        let key = self
            .pending_key
            .take()
            .ok_or_else(|| CanonicalError::Custom("map value without a key".into()))?;
        let value_at = self.enc.out.len();
        write(self.enc)?;
        self.enc.spans.push(EntrySpan {
            key,
            value: value_at,
            end: self.enc.out.len(),
        });
        Ok(())
    }

    fn finish(self) -> Result<(), CanonicalError> {
        if self.pending_key.is_some() {
            return Err(CanonicalError::Custom("map key without a value".into()));
        }
        let Encoder {
            out,
            spans,
            scratch,
            ..
        } = self.enc;
        let entries = &mut spans[self.first..];
        out[self.count_at..self.count_at + 4].copy_from_slice(&len_u32(entries.len())?);
        let ordered = put_in_key_order(out, entries, scratch, self.count_at + 4);
        spans.truncate(self.first);
        ordered
    }
}

/// Reorders the map entries `entries`, which lie back to back in `out`
/// from `start` to its end, by the bytes of their keys.
fn put_in_key_order(
    out: &mut [u8],
    entries: &mut [EntrySpan],
    scratch: &mut Vec<u8>,
    start: usize,
) -> Result<(), CanonicalError> {
    {
        let key = |e: &EntrySpan| &out[e.key..e.value];
        if entries.is_sorted_by(|a, b| key(a) < key(b)) {
            return Ok(());
        }
        entries.sort_unstable_by(|a, b| key(a).cmp(key(b)));
        if entries.windows(2).any(|w| key(&w[0]) == key(&w[1])) {
            return Err(CanonicalError::DuplicateKey);
        }
    }
    scratch.clear();
    for e in entries.iter() {
        scratch.extend_from_slice(&out[e.key..e.end]);
    }
    out[start..].copy_from_slice(scratch);
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::{BTreeMap, HashMap};

    #[derive(serde::Serialize)]
    struct Sample {
        a: u16,
        b: Option<String>,
        c: Vec<bool>,
    }

    #[test]
    fn encodes_fixed_layout() {
        let bytes = to_bytes(&Sample {
            a: 0x0102,
            b: Some("hi".into()),
            c: vec![true, false],
        })
        .unwrap();
        assert_eq!(
            bytes,
            vec![1, 2, 1, 0, 0, 0, 2, b'h', b'i', 0, 0, 0, 2, 1, 0]
        );
    }

    #[test]
    fn encoded_bytes_stand_in_for_their_value() {
        let inner = Sample {
            a: 7,
            b: None,
            c: vec![true],
        };
        let encoded = to_bytes(&inner).unwrap();
        let mut by_value = BTreeMap::new();
        by_value.insert("k", (1u8, &inner));
        let mut by_bytes = BTreeMap::new();
        by_bytes.insert("k", (1u8, Encoded(&encoded)));
        assert_eq!(to_bytes(&by_bytes).unwrap(), to_bytes(&by_value).unwrap());
        // Other byte strings keep their length prefix.
        assert_eq!(
            to_bytes(&(Encoded(&[9]), serde_bytes_of(&[9]))).unwrap(),
            vec![9, 0, 0, 0, 1, 9]
        );
    }

    fn serde_bytes_of(b: &[u8]) -> impl Serialize + '_ {
        struct B<'a>(&'a [u8]);
        impl Serialize for B<'_> {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_bytes(self.0)
            }
        }
        B(b)
    }

    #[test]
    fn map_order_does_not_matter() {
        let mut hashed = HashMap::new();
        let mut sorted = BTreeMap::new();
        for i in 0..50u32 {
            hashed.insert(format!("k{i}"), i);
            sorted.insert(format!("k{i}"), i);
        }
        assert_eq!(to_bytes(&hashed).unwrap(), to_bytes(&sorted).unwrap());
    }

    /// The map rule spelled out on JSON values: a count, then each entry's
    /// key and value bytes, in the order of the key bytes. Everything but
    /// maps goes through the encoder, which holds no map here.
    fn by_the_rule(v: &serde_json::Value) -> Vec<u8> {
        use serde_json::Value;
        match v {
            Value::Array(items) => {
                let mut out = len_u32(items.len()).unwrap().to_vec();
                for item in items {
                    out.extend(by_the_rule(item));
                }
                out
            }
            Value::Object(map) => {
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> = map
                    .iter()
                    .map(|(k, v)| (to_bytes(k).unwrap(), by_the_rule(v)))
                    .collect();
                entries.sort();
                let mut out = len_u32(entries.len()).unwrap().to_vec();
                for (k, v) in entries {
                    out.extend(k);
                    out.extend(v);
                }
                out
            }
            scalar => to_bytes(scalar).unwrap(),
        }
    }

    fn json_value() -> impl proptest::strategy::Strategy<Value = serde_json::Value> {
        use proptest::prelude::*;
        use serde_json::Value;
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            any::<i64>().prop_map(Value::from),
            "[a-z]{0,12}".prop_map(Value::from),
        ];
        leaf.prop_recursive(4, 64, 8, |inner| {
            prop_oneof![
                proptest::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                proptest::collection::btree_map("[a-z]{0,10}", inner, 0..8)
                    .prop_map(|m| Value::Object(m.into_iter().collect())),
            ]
        })
    }

    proptest::proptest! {
        #[test]
        fn nested_maps_are_encoded_by_the_rule(v in json_value()) {
            proptest::prop_assert_eq!(to_bytes(&v).unwrap(), by_the_rule(&v));
        }
    }

    #[test]
    fn a_key_given_twice_is_refused_at_any_depth() {
        struct Twice;
        impl Serialize for Twice {
            fn serialize<S: ser::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                use ser::SerializeMap;
                let mut m = s.serialize_map(None)?;
                m.serialize_entry("b", &1u8)?;
                m.serialize_entry("a", &2u8)?;
                m.serialize_entry("b", &3u8)?;
                m.end()
            }
        }
        assert_eq!(to_bytes(&Twice), Err(CanonicalError::DuplicateKey));
        let mut outer = BTreeMap::new();
        outer.insert("x", vec![Twice]);
        assert_eq!(to_bytes(&outer), Err(CanonicalError::DuplicateKey));
    }

    #[test]
    fn json_objects_are_canonical_whatever_their_spelling() {
        let a: serde_json::Value = serde_json::from_str(r#"{"b":1,"a":[1.5,"x"]}"#).unwrap();
        let b: serde_json::Value =
            serde_json::from_str(r#"{ "a" : [1.5, "x"], "b" : 1 }"#).unwrap();
        assert_eq!(to_bytes(&a).unwrap(), to_bytes(&b).unwrap());
    }

    #[test]
    fn skipped_fields_and_nan_are_refused() {
        #[derive(serde::Serialize)]
        struct Skips {
            #[serde(skip_serializing_if = "Option::is_none")]
            x: Option<u8>,
        }
        assert_eq!(
            to_bytes(&Skips { x: None }),
            Err(CanonicalError::SkippedField("x"))
        );
        assert_eq!(to_bytes(&f64::NAN), Err(CanonicalError::NaN));
        assert_eq!(to_bytes(&-0.0f64).unwrap(), to_bytes(&0.0f64).unwrap());
    }

    #[test]
    fn a_sequence_digested_from_its_encoded_parts_is_the_sequence_digested() {
        let domain = Domain::new("aura.test-seq/1");
        let items = vec![json_sample(1), json_sample(2), json_sample(3)];
        let encoded: Vec<Vec<u8>> = items.iter().map(|v| to_bytes(v).unwrap()).collect();
        let (first, rest) = encoded.split_at(1);
        let rest = rest.concat();
        assert_eq!(
            digest_encoded_seq(domain, 3, &[&first[0], &rest]).unwrap(),
            digest(domain, &items).unwrap()
        );
        assert_ne!(
            digest_encoded_seq(domain, 2, &[&first[0], &rest]).unwrap(),
            digest(domain, &items).unwrap()
        );
    }

    fn json_sample(n: i64) -> serde_json::Value {
        serde_json::json!({"n": n, "uid": {"type": "T", "id": n.to_string()}})
    }

    #[test]
    fn domains_separate_digests() {
        let one = digest(Domain::new("aura.test-a/1"), &7u8).unwrap();
        let two = digest(Domain::new("aura.test-b/1"), &7u8).unwrap();
        assert_ne!(one, two);
        assert_eq!(
            one,
            digest_encoded(Domain::new("aura.test-a/1"), &to_bytes(&7u8).unwrap())
        );
    }
}
