//! OpenAPI schemas of the engine's value types, for the API's document
//! (feature `openapi`; the engine itself never needs them). Types that
//! are written as strings (ids, digests, keys, signatures) say so here,
//! with the pattern every valid value matches; structs derive theirs.

use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, Schema, SchemaType, Type};

pub(crate) fn string(description: String, pattern: &str) -> RefOr<Schema> {
    RefOr::T(Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .description(Some(description))
            .pattern(Some(pattern))
            .build(),
    ))
}

/// A typed identifier's schema (see [`crate::ids`]).
pub(crate) fn id(kind: &str) -> RefOr<Schema> {
    string(
        format!(
            "A {kind}: 1 to 128 characters from a-z, 0-9, '-', '_' and '.', starting with a letter or digit."
        ),
        "^[a-z0-9][a-z0-9._-]{0,127}$",
    )
}

macro_rules! string_schema {
    ($name:ty, $description:literal, $pattern:literal) => {
        impl utoipa::PartialSchema for $name {
            fn schema() -> RefOr<Schema> {
                string($description.to_owned(), $pattern)
            }
        }
        impl utoipa::ToSchema for $name {}
    };
}

string_schema!(
    crate::digest::Digest,
    "A SHA-256 digest, lowercase hex.",
    "^[0-9a-f]{64}$"
);
string_schema!(
    crate::identity::keys::PublicKey,
    "An Ed25519 public key, base64 (standard alphabet, padded).",
    "^[A-Za-z0-9+/]{43}=$"
);
string_schema!(
    crate::identity::key_id::SigningKeyId,
    "A tenant signing key's id: the first four bytes, in lowercase hex, of the key's C2SP signed-note key id.",
    "^[0-9a-f]{8}$"
);
string_schema!(
    crate::identity::keys::Signature,
    "An Ed25519 signature, base64 (standard alphabet, padded).",
    "^[A-Za-z0-9+/]{86}==$"
);

impl utoipa::PartialSchema for crate::mission::retry::Coefficient {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::Number))
                .description(Some(
                    "A backoff multiplier, 1.0 to 10.0 (kept to thousandths).",
                ))
                .minimum(Some(crate::mission::retry::Coefficient::MIN))
                .maximum(Some(crate::mission::retry::Coefficient::MAX))
                .build(),
        ))
    }
}

impl utoipa::ToSchema for crate::mission::retry::Coefficient {}

/// A deployment target (`on-prem`, `cloud` or `region:<name>`).
fn deployment_target() -> Schema {
    Schema::Object(
        ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::String))
            .pattern(Some("^(on-prem|cloud|region:[a-z0-9-]{1,64})$"))
            .build(),
    )
}

impl utoipa::PartialSchema for crate::policy::routing::RoutingTable {
    fn schema() -> RefOr<Schema> {
        use utoipa::openapi::schema::ArrayBuilder;
        let classifications =
            <crate::mission::DataClassification as utoipa::PartialSchema>::schema();
        let targets = ArrayBuilder::new()
            .items(RefOr::T(deployment_target()))
            .build();
        let mut object = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .description(Some(
                "Which deployment targets data of each classification may reach; a classification with no entry may go nowhere.",
            ))
            .additional_properties(Some(RefOr::T(Schema::Array(targets))))
            .build();
        if let RefOr::T(names) = classifications {
            object.property_names = Some(Box::new(names));
        }
        RefOr::T(Schema::Object(object))
    }
}

impl utoipa::ToSchema for crate::policy::routing::RoutingTable {}

/// An audit entry's payload is the event it records, as the JSON its
/// digest was taken over: any JSON object by design, so that a verifier
/// checks it byte for byte rather than through a schema.
impl utoipa::PartialSchema for crate::audit::Payload {
    fn schema() -> RefOr<Schema> {
        RefOr::T(Schema::Object(
            ObjectBuilder::new()
                .schema_type(SchemaType::AnyValue)
                .description(Some(
                    "The audited events as JSON; their canonical digest is the entry's `payload_digest`.",
                ))
                .build(),
        ))
    }
}

impl utoipa::ToSchema for crate::audit::Payload {}

/// The reasoner settings, one object per provider: the model settings'
/// fields beside `provider`. A derive writes the model variants as
/// `allOf` the settings (which refuse unknown fields, `provider` among
/// them) and the tag, which no body can satisfy; and the Anthropic API
/// always needs a key.
impl utoipa::PartialSchema for crate::policy::reasoner::ReasonerConfig {
    fn schema() -> RefOr<Schema> {
        use crate::policy::reasoner::ModelSettings;
        use utoipa::openapi::schema::OneOfBuilder;
        let provider = |name: &str| {
            ObjectBuilder::new()
                .schema_type(SchemaType::Type(Type::String))
                .enum_values(Some([name]))
                .build()
        };
        let settings = match <ModelSettings as utoipa::PartialSchema>::schema() {
            RefOr::T(Schema::Object(o)) => o,
            _ => unreachable!("a derived struct schema is an object"),
        };
        let model = |name: &str, description: &str, also_required: &[&str]| {
            let mut o = settings.clone();
            o.properties
                .insert("provider".into(), provider(name).into());
            o.required.insert(0, "provider".into());
            o.required
                .extend(also_required.iter().map(|r| (*r).to_owned()));
            o.description = Some(description.to_owned());
            Schema::Object(o)
        };
        let scripted = ObjectBuilder::new()
            .schema_type(SchemaType::Type(Type::Object))
            .property("provider", provider("scripted"))
            .required("provider")
            .additional_properties(Some(utoipa::openapi::schema::AdditionalProperties::FreeForm(false)))
            .description(Some(
                "No model: one step per tool of the definition, in order, each called with the mission's inputs.",
            ))
            .build();
        RefOr::T(Schema::OneOf(
            OneOfBuilder::new()
                .item(scripted)
                .item(model(
                    "anthropic",
                    "The Anthropic Messages API (`POST {url}/v1/messages`); it needs `api_key_secret`.",
                    &["api_key_secret"],
                ))
                .item(model(
                    "openai-compatible",
                    "OpenAI-compatible chat completions (`POST {url}/chat/completions`): OpenAI, Ollama, vLLM, llama.cpp servers.",
                    &[],
                ))
                .build(),
        ))
    }
}

impl utoipa::ToSchema for crate::policy::reasoner::ReasonerConfig {}
