//! Free texts requests carry: the rule the application applies to them
//! ([`check`]; the engine applies its own to what it stores), and their
//! schema, which states that rule: 1 to `max` characters, not only white
//! space, no control characters. Fields name a schema with `schema_with`.

use utoipa::openapi::Object;
use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};

use super::AppError;

/// The longest directory or key text.
const LINE: usize = 256;

/// A directory or key text at `pointer`: 1 to 256 characters, not only
/// white space, no control characters.
pub fn check(pointer: &str, s: &str) -> Result<(), AppError> {
    if s.trim().is_empty() || s.chars().count() > LINE || s.chars().any(char::is_control) {
        return Err(AppError::invalid(
            pointer,
            format!("must be 1 to {LINE} characters without control characters"),
        ));
    }
    Ok(())
}

/// One character that is not a control character, then the same with at
/// least one that is not white space.
const PATTERN: &str = r"^[^\u0000-\u001F\u007F-\u009F]*[^\s\u0000-\u001F\u007F-\u009F][^\u0000-\u001F\u007F-\u009F]*$";

fn text(max: usize, nullable: bool) -> Object {
    described(max, nullable, None)
}

/// A field's doc comment does not reach a schema made by `schema_with`,
/// so the fields that have one name it here.
fn described(max: usize, nullable: bool, description: Option<&str>) -> Object {
    let ty = if nullable {
        SchemaType::from_iter([Type::String, Type::Null])
    } else {
        SchemaType::Type(Type::String)
    };
    ObjectBuilder::new()
        .schema_type(ty)
        .min_length(Some(1))
        .max_length(Some(max))
        .pattern(Some(PATTERN))
        .description(description)
        .build()
}

/// A display name the engine stores (at most 200 characters).
pub fn name() -> Object {
    text(200, false)
}

/// A directory or key text (at most 256 characters).
pub fn line() -> Object {
    text(LINE, false)
}

/// An API key's name.
pub fn key_name() -> Object {
    described(
        LINE,
        false,
        Some("What the key is for, for people reading the key list."),
    )
}

/// A directory user's sign-in name.
pub fn user_name() -> Object {
    described(LINE, false, Some("The sign-in name; unique in the tenant."))
}

/// [`line`], or null.
pub fn optional_line() -> Object {
    text(LINE, true)
}

/// A reason or note the engine records (at most 2000 characters).
pub fn note() -> Object {
    text(2000, false)
}
