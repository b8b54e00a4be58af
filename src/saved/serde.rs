//! `Serialize` and `Deserialize` for [`SavedState`] (feature `serde`):
//! `{"state": "Open", "count": 3, "backoff_level": 1, "remaining_ms": 30000}`, the state by
//! name as [`State`] serializes, the time in whole ms as the rest of the crate's serde.
//! Deserializing checks every field as [`SavedState::new`] does (the message is the
//! [`RestoreError`]'s), rejects unknown and repeated fields, requires all four, and never panics.
//! No allocation, so `no_std` too.

use core::fmt;

use serde::de::{
    self, Deserialize, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use super::{RestoreError, SavedState};
use crate::state::State;

const FIELDS: &[&str] = &["state", "count", "backoff_level", "remaining_ms"];
const STATES: &[&str] = &["Closed", "Open", "HalfOpen", "ForcedOpen", "Disabled"];

impl Serialize for SavedState {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut st = s.serialize_struct("SavedState", 4)?;
        st.serialize_field("state", &self.state)?;
        st.serialize_field("count", &self.count)?;
        st.serialize_field("backoff_level", &self.level)?;
        st.serialize_field("remaining_ms", &self.remaining_ms)?;
        st.end()
    }
}

/// A state's name (or index, for formats that write variant indices).
struct StateName(State);

impl<'de> Deserialize<'de> for StateName {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Name;
        impl Visitor<'_> for Name {
            type Value = StateName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a breaker state name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StateName, E> {
                match STATES.iter().position(|n| *n == v) {
                    Some(i) => self.visit_u64(i as u64),
                    None => Err(E::unknown_variant(v, STATES)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<StateName, E> {
                Ok(StateName(match v {
                    0 => State::Closed,
                    1 => State::Open,
                    2 => State::HalfOpen,
                    3 => State::ForcedOpen,
                    4 => State::Disabled,
                    _ => {
                        return Err(E::invalid_value(
                            de::Unexpected::Unsigned(v),
                            &"a state index from 0 to 4",
                        ))
                    }
                }))
            }
        }
        struct Variant;
        impl<'de> Visitor<'de> for Variant {
            type Value = StateName;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a breaker state")
            }
            fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<StateName, A::Error> {
                let (name, variant) = data.variant_seed(NameSeed)?;
                variant.unit_variant()?;
                Ok(name)
            }
        }
        struct NameSeed;
        impl<'de> de::DeserializeSeed<'de> for NameSeed {
            type Value = StateName;
            fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<StateName, D::Error> {
                d.deserialize_identifier(Name)
            }
        }
        d.deserialize_enum("State", STATES, Variant)
    }
}

/// A field name.
struct Field(usize);

impl<'de> Deserialize<'de> for Field {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct FieldVisitor;
        impl Visitor<'_> for FieldVisitor {
            type Value = Field;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a saved breaker state field name")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Field, E> {
                match FIELDS.iter().position(|f| *f == v) {
                    Some(i) => Ok(Field(i)),
                    None => Err(E::unknown_field(v, FIELDS)),
                }
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Field, E> {
                match usize::try_from(v) {
                    Ok(i) if i < FIELDS.len() => Ok(Field(i)),
                    _ => Err(E::invalid_value(de::Unexpected::Unsigned(v), &self)),
                }
            }
        }
        d.deserialize_identifier(FieldVisitor)
    }
}

/// The fields, checked: the [`RestoreError`] as the message.
fn checked<E: de::Error>(
    state: State,
    count: u64,
    level: u64,
    remaining_ms: u64,
) -> Result<SavedState, E> {
    let narrow = |v: u64| u32::try_from(v).unwrap_or(u32::MAX);
    SavedState::checked(state, narrow(count), narrow(level), remaining_ms)
        .map_err(|e: RestoreError| E::custom(e))
}

struct SavedVisitor;

impl<'de> Visitor<'de> for SavedVisitor {
    type Value = SavedState;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a saved breaker state")
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<SavedState, A::Error> {
        let missing = |i: usize| de::Error::invalid_length(i, &"4 fields");
        let state: StateName = seq.next_element()?.ok_or_else(|| missing(0))?;
        let count: u64 = seq.next_element()?.ok_or_else(|| missing(1))?;
        let level: u64 = seq.next_element()?.ok_or_else(|| missing(2))?;
        let remaining: u64 = seq.next_element()?.ok_or_else(|| missing(3))?;
        checked(state.0, count, level, remaining)
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<SavedState, A::Error> {
        let mut state: Option<State> = None;
        let mut numbers: [Option<u64>; 3] = [None; 3];
        while let Some(Field(i)) = map.next_key()? {
            if i == 0 {
                if state.is_some() {
                    return Err(de::Error::duplicate_field(FIELDS[0]));
                }
                state = Some(map.next_value::<StateName>()?.0);
            } else {
                if numbers[i - 1].is_some() {
                    return Err(de::Error::duplicate_field(FIELDS[i]));
                }
                numbers[i - 1] = Some(map.next_value()?);
            }
        }
        let state = state.ok_or_else(|| de::Error::missing_field(FIELDS[0]))?;
        let mut n = [0u64; 3];
        for (i, v) in numbers.iter().enumerate() {
            n[i] = v.ok_or_else(|| de::Error::missing_field(FIELDS[i + 1]))?;
        }
        checked(state, n[0], n[1], n[2])
    }
}

impl<'de> Deserialize<'de> for SavedState {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_struct("SavedState", FIELDS, SavedVisitor)
    }
}
