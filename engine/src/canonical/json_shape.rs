//! The canonical encoding of a value's JSON form, written straight from
//! the value.
//!
//! An audit payload's digest is defined over the JSON form of the events
//! it records (so that any JSON spelling of the same payload verifies).
//! Building that form as a `serde_json::Value` only to encode it was a
//! fifth of the cost of committing a command. [`Shaped`] sends each serde
//! call on to the encoder as the call `Value` would make for the same
//! datum: structs and enum variants become maps keyed by name, integers
//! become `u64` when not negative, options and units collapse to their
//! content or to nothing, and so on. The tests hold it to
//! `serde_json::to_value` on every shape serde has.

use serde::ser::{self, Serialize, Serializer as _};

use super::{CanonicalError, Encoder, MapEncoder, SeqEncoder};

/// The struct name `serde_json` gives a raw JSON value, which `to_value`
/// parses; it is refused here rather than encoded as a struct.
const RAW_VALUE_TOKEN: &str = "$serde_json::private::RawValue";

/// Encodes what it is given as its JSON form would be encoded.
pub(super) struct Shaped<'a>(pub(super) &'a mut Encoder);

/// A number `serde_json` cannot hold without `arbitrary_precision`.
fn out_of_range() -> CanonicalError {
    CanonicalError::Custom("number out of range".into())
}

impl<'a> Shaped<'a> {
    /// `serde_json` holds a non-negative `i64` as a `u64`, which the
    /// encoding writes with the same eight bytes.
    fn int(self, v: i64) -> Result<(), CanonicalError> {
        self.0.serialize_i64(v)
    }

    /// A float that is not finite is `null` in JSON.
    fn float(self, v: f64) -> Result<(), CanonicalError> {
        if v.is_finite() {
            self.0.serialize_f64(v)
        } else {
            self.0.serialize_unit()
        }
    }

    /// The head of `{variant: ...}`: a map of one entry, and its key.
    fn one_entry_map(&mut self, variant: &str) -> Result<(), CanonicalError> {
        self.0.put_len(1)?;
        (&mut *self.0).serialize_str(variant)
    }
}

impl<'a> ser::Serializer for Shaped<'a> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = ShapedSeq<'a>;
    type SerializeTuple = ShapedSeq<'a>;
    type SerializeTupleStruct = ShapedSeq<'a>;
    type SerializeTupleVariant = ShapedSeq<'a>;
    type SerializeMap = ShapedMap<'a>;
    type SerializeStruct = ShapedMap<'a>;
    type SerializeStructVariant = ShapedMap<'a>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonicalError> {
        self.0.serialize_bool(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonicalError> {
        self.int(i64::from(v))
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonicalError> {
        self.int(i64::from(v))
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonicalError> {
        self.int(i64::from(v))
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonicalError> {
        self.int(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), CanonicalError> {
        match (u64::try_from(v), i64::try_from(v)) {
            (_, Ok(i)) => self.0.serialize_i64(i),
            (Ok(u), _) => self.0.serialize_u64(u),
            _ => Err(out_of_range()),
        }
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonicalError> {
        self.0.serialize_u64(u64::from(v))
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonicalError> {
        self.0.serialize_u64(u64::from(v))
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonicalError> {
        self.0.serialize_u64(u64::from(v))
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonicalError> {
        self.0.serialize_u64(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), CanonicalError> {
        self.0
            .serialize_u64(u64::try_from(v).map_err(|_| out_of_range())?)
    }
    fn serialize_f32(self, v: f32) -> Result<(), CanonicalError> {
        self.float(f64::from(v))
    }
    fn serialize_f64(self, v: f64) -> Result<(), CanonicalError> {
        self.float(v)
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalError> {
        self.0.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonicalError> {
        self.0.serialize_str(v)
    }
    /// Bytes are an array of numbers in JSON.
    fn serialize_bytes(self, v: &[u8]) -> Result<(), CanonicalError> {
        self.0.put_len(v.len())?;
        for b in v {
            (&mut *self.0).serialize_u64(u64::from(*b))?;
        }
        Ok(())
    }
    fn serialize_none(self) -> Result<(), CanonicalError> {
        self.0.serialize_unit()
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), CanonicalError> {
        self.0.serialize_unit()
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CanonicalError> {
        self.0.serialize_unit()
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CanonicalError> {
        self.0.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.one_entry_map(variant)?;
        value.serialize(self)
    }
    fn serialize_seq(self, len: Option<usize>) -> Result<ShapedSeq<'a>, CanonicalError> {
        Ok(ShapedSeq(self.0.serialize_seq(len)?))
    }
    fn serialize_tuple(self, len: usize) -> Result<ShapedSeq<'a>, CanonicalError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        len: usize,
    ) -> Result<ShapedSeq<'a>, CanonicalError> {
        self.serialize_seq(Some(len))
    }
    fn serialize_tuple_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<ShapedSeq<'a>, CanonicalError> {
        self.one_entry_map(variant)?;
        self.serialize_seq(Some(len))
    }
    fn serialize_map(self, len: Option<usize>) -> Result<ShapedMap<'a>, CanonicalError> {
        Ok(ShapedMap(self.0.serialize_map(len)?))
    }
    fn serialize_struct(
        self,
        name: &'static str,
        len: usize,
    ) -> Result<ShapedMap<'a>, CanonicalError> {
        if name == RAW_VALUE_TOKEN {
            return Err(CanonicalError::Custom(
                "raw JSON has no canonical form until it is parsed".into(),
            ));
        }
        self.serialize_map(Some(len))
    }
    fn serialize_struct_variant(
        mut self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        len: usize,
    ) -> Result<ShapedMap<'a>, CanonicalError> {
        self.one_entry_map(variant)?;
        self.serialize_map(Some(len))
    }
    fn is_human_readable(&self) -> bool {
        true
    }
}

/// A JSON array.
pub(super) struct ShapedSeq<'a>(SeqEncoder<'a>);

impl ShapedSeq<'_> {
    fn element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        self.0.count += 1;
        value.serialize(Shaped(&mut *self.0.enc))
    }
}

/// The four ways serde writes a sequence are one JSON array.
macro_rules! shaped_seq {
    ($($trait:ident :: $method:ident),*) => {$(
        impl ser::$trait for ShapedSeq<'_> {
            type Ok = ();
            type Error = CanonicalError;
            fn $method<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
                self.element(value)
            }
            fn end(self) -> Result<(), CanonicalError> {
                self.0.finish()
            }
        }
    )*};
}

shaped_seq!(
    SerializeSeq::serialize_element,
    SerializeTuple::serialize_element,
    SerializeTupleStruct::serialize_field,
    SerializeTupleVariant::serialize_field
);

/// A JSON object; struct fields are entries keyed by their names, and a
/// skipped field is simply absent, as in JSON.
pub(super) struct ShapedMap<'a>(MapEncoder<'a>);

impl ShapedMap<'_> {
    fn field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        self.0.pending_key = Some(self.0.enc.out.len());
        (&mut *self.0.enc).serialize_str(key)?;
        self.0.value_with(|enc| value.serialize(Shaped(enc)))
    }
}

impl ser::SerializeMap for ShapedMap<'_> {
    type Ok = ();
    type Error = CanonicalError;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), CanonicalError> {
        self.0.pending_key = Some(self.0.enc.out.len());
        key.serialize(Key(&mut *self.0.enc))
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), CanonicalError> {
        self.0.value_with(|enc| value.serialize(Shaped(enc)))
    }
    fn end(self) -> Result<(), CanonicalError> {
        self.0.finish()
    }
}

/// A struct and a struct variant's fields are one JSON object.
macro_rules! shaped_struct {
    ($($trait:ident),*) => {$(
        impl ser::$trait for ShapedMap<'_> {
            type Ok = ();
            type Error = CanonicalError;
            fn serialize_field<T: Serialize + ?Sized>(
                &mut self,
                key: &'static str,
                value: &T,
            ) -> Result<(), CanonicalError> {
                self.field(key, value)
            }
            fn skip_field(&mut self, _key: &'static str) -> Result<(), CanonicalError> {
                Ok(())
            }
            fn end(self) -> Result<(), CanonicalError> {
                self.0.finish()
            }
        }
    )*};
}

shaped_struct!(SerializeStruct, SerializeStructVariant);

/// A map key, which JSON spells as a string: strings and characters as
/// they are, integers and booleans as `serde_json` writes them, unit
/// variants by name. Anything else is refused, as `serde_json` refuses
/// most of it (float keys, which it would write, no AURA type has).
struct Key<'a>(&'a mut Encoder);

fn not_a_key() -> CanonicalError {
    CanonicalError::Custom("a JSON object key must be a string, integer or boolean".into())
}

impl Key<'_> {
    fn text(self, v: impl std::fmt::Display) -> Result<(), CanonicalError> {
        self.0.serialize_str(&v.to_string())
    }
}

impl ser::Serializer for Key<'_> {
    type Ok = ();
    type Error = CanonicalError;
    type SerializeSeq = ser::Impossible<(), CanonicalError>;
    type SerializeTuple = ser::Impossible<(), CanonicalError>;
    type SerializeTupleStruct = ser::Impossible<(), CanonicalError>;
    type SerializeTupleVariant = ser::Impossible<(), CanonicalError>;
    type SerializeMap = ser::Impossible<(), CanonicalError>;
    type SerializeStruct = ser::Impossible<(), CanonicalError>;
    type SerializeStructVariant = ser::Impossible<(), CanonicalError>;

    fn serialize_bool(self, v: bool) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_i8(self, v: i8) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_i16(self, v: i16) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_i32(self, v: i32) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_i128(self, v: i128) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_u8(self, v: u8) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_u16(self, v: u16) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_u32(self, v: u32) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_u64(self, v: u64) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_u128(self, v: u128) -> Result<(), CanonicalError> {
        self.text(v)
    }
    fn serialize_f32(self, _v: f32) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_f64(self, _v: f64) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_char(self, v: char) -> Result<(), CanonicalError> {
        self.0.serialize_str(v.encode_utf8(&mut [0; 4]))
    }
    fn serialize_str(self, v: &str) -> Result<(), CanonicalError> {
        self.0.serialize_str(v)
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_none(self) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_unit(self) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<(), CanonicalError> {
        self.0.serialize_str(variant)
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<(), CanonicalError> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<(), CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, CanonicalError> {
        Err(not_a_key())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, CanonicalError> {
        Err(not_a_key())
    }
    fn is_human_readable(&self) -> bool {
        true
    }
}

#[cfg(test)]
mod tests {
    use std::collections::{BTreeMap, HashMap};

    use serde::Serialize;

    use super::super::{CanonicalError, Domain, digest, digest_encoded, to_bytes_as_json};
    use crate::digest::Digest;

    const DOMAIN: Domain = Domain::new("aura.test-json-shape/1");

    /// The digest of the framed JSON-form bytes, as audit payloads take it.
    fn digest_as_json<T: Serialize + ?Sized>(
        domain: Domain,
        value: &T,
    ) -> Result<Digest, CanonicalError> {
        Ok(digest_encoded(domain, &to_bytes_as_json(value)?))
    }

    /// The definition: the digest of the value `serde_json` makes.
    fn agrees<T: Serialize>(v: &T) {
        let value = serde_json::to_value(v).expect("the sample has a JSON form");
        assert_eq!(
            digest_as_json(DOMAIN, v).unwrap(),
            digest(DOMAIN, &value).unwrap(),
            "{value}"
        );
    }

    #[derive(Serialize)]
    struct Unit;

    #[derive(Serialize)]
    struct Newtype(i32);

    #[derive(Serialize)]
    struct Tuple(u8, String);

    #[derive(Serialize)]
    enum External {
        Unit,
        Newtype(u16),
        Tuple(i8, bool),
        Struct { a: u32, b: Option<Box<External>> },
    }

    #[derive(Serialize)]
    #[serde(tag = "kind", rename_all = "snake_case")]
    enum Internal {
        First { x: i64 },
        Second(Inner),
        Third,
    }

    #[derive(Serialize)]
    #[serde(tag = "t", content = "c")]
    enum Adjacent {
        Only(Vec<u8>),
    }

    #[derive(Serialize)]
    #[serde(untagged)]
    enum Untagged {
        Number(u64),
        Text(String),
    }

    #[derive(Serialize)]
    struct Inner {
        #[serde(skip_serializing_if = "Option::is_none")]
        skipped: Option<u8>,
        kept: Option<u8>,
        #[serde(rename = "renamed-field")]
        renamed: char,
        #[serde(with = "serde_bytes_as_bytes")]
        bytes: Vec<u8>,
    }

    mod serde_bytes_as_bytes {
        pub fn serialize<S: serde::Serializer>(v: &[u8], s: S) -> Result<S::Ok, S::Error> {
            s.serialize_bytes(v)
        }
    }

    #[derive(Serialize)]
    struct Everything {
        unit: (),
        unit_struct: Unit,
        newtype: Newtype,
        tuple: Tuple,
        pair: (i16, f32),
        negative: i64,
        positive: i64,
        big: u64,
        wide: i128,
        wide_unsigned: u128,
        float: f64,
        not_finite: f64,
        zero: f64,
        externals: Vec<External>,
        internals: Vec<Internal>,
        adjacent: Adjacent,
        untagged: Vec<Untagged>,
        #[serde(flatten)]
        flattened: Inner,
        int_keys: BTreeMap<i32, bool>,
        bool_keys: HashMap<bool, u8>,
        unit_variant_keys: BTreeMap<Key, u8>,
        json: serde_json::Value,
    }

    #[derive(Serialize, PartialEq, Eq, PartialOrd, Ord)]
    enum Key {
        Left,
        Right,
    }

    fn everything(tweak: i64) -> Everything {
        let inner = || Inner {
            skipped: None,
            kept: Some(3),
            renamed: 'é',
            bytes: vec![0, 255, 7],
        };
        Everything {
            unit: (),
            unit_struct: Unit,
            newtype: Newtype(-4),
            tuple: Tuple(9, "nine".into()),
            pair: (-2, 0.1),
            negative: -tweak - 1,
            positive: tweak,
            big: u64::MAX - tweak as u64,
            wide: -(1 << 40),
            wide_unsigned: 1 << 60,
            float: -2.5 * tweak as f64,
            not_finite: f64::INFINITY,
            zero: -0.0,
            externals: vec![
                External::Unit,
                External::Newtype(7),
                External::Tuple(-1, true),
                External::Struct {
                    a: 1,
                    b: Some(Box::new(External::Struct { a: 2, b: None })),
                },
            ],
            internals: vec![
                Internal::First { x: tweak },
                Internal::Second(inner()),
                Internal::Third,
            ],
            adjacent: Adjacent::Only(vec![1, 2]),
            untagged: vec![Untagged::Number(5), Untagged::Text("five".into())],
            flattened: Inner {
                skipped: Some(1),
                ..inner()
            },
            int_keys: (-3..3).map(|i| (i * 7, i % 2 == 0)).collect(),
            bool_keys: [(true, 1), (false, 0)].into_iter().collect(),
            unit_variant_keys: [(Key::Right, 2), (Key::Left, 1)].into_iter().collect(),
            json: serde_json::json!({"z": [1, -1, 1.5, null, {"b": "x", "a": {}}], "a": true}),
        }
    }

    #[test]
    fn every_serde_shape_is_encoded_as_its_json_value() {
        for tweak in [0, 1, 41, i64::from(i32::MAX)] {
            agrees(&everything(tweak));
        }
        agrees(&serde_json::json!(null));
        agrees(&Option::<u8>::None);
        agrees(&"text");
    }

    #[test]
    fn what_json_cannot_hold_is_refused() {
        assert!(digest_as_json(DOMAIN, &u128::MAX).is_err());
        assert!(digest_as_json(DOMAIN, &i128::MIN).is_err());
        assert!(digest_as_json(DOMAIN, &Map(vec![(1.5f64, 1u8)])).is_err());
        assert!(digest_as_json(DOMAIN, &Map(vec![(vec![1u8], 1u8)])).is_err());
        let raw = serde_json::value::RawValue::from_string("{}".into()).unwrap();
        assert!(digest_as_json(DOMAIN, &raw).is_err());
    }

    /// A map whose keys are whatever it holds.
    struct Map<K, V>(Vec<(K, V)>);

    impl<K: Serialize, V: Serialize> Serialize for Map<K, V> {
        fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
            use serde::ser::SerializeMap;
            let mut m = s.serialize_map(Some(self.0.len()))?;
            for (k, v) in &self.0 {
                m.serialize_entry(k, v)?;
            }
            m.end()
        }
    }
}
