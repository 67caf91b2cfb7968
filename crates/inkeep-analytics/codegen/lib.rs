//! The one place where code generation is configured, so that `build.rs` and `cargo xtask` produce byte-identical code.
//!
//! This file is compiled twice: as a module of the SDK's `build.rs` (so that the published crate
//! generates its client on its own) and as the library of the `inkeep-analytics-codegen` crate
//! (which `xtask` uses for `generate` and `check`).
//! Both read the same spec text and call [`generate_client`], so they cannot disagree.
//!
//! progenitor (through typify) rejects enum values and union kinds that the spec does not list,
//! and drops object keys it does not know.
//! The API grows, so the code generated here post-processes typify's output:
//! - every named string enum becomes an open enum with an `Other(String)` variant;
//! - every `oneOf` with a `discriminator` becomes an open union with an `Unknown(serde_json::Value)` variant;
//! - every object that does not forbid extra keys gets a flattened `extra` map, so unknown keys survive a round trip;
//! - those objects, the unions and the string-or-number unions get single-pass `Deserialize` impls
//!   (`codegen/decoders.rs`), so that keeping what is unknown costs no buffering;
//! - every builder starts `extra` empty and `Option` fields as `None`, and a generated test builds
//!   each struct through its builder (`codegen/builders.rs`).

#![allow(dead_code)]

mod builders;
mod decoders;
mod mocks;
mod yaml;

pub use yaml::{YamlError, yaml_to_json_text};

use std::collections::BTreeMap;
use std::fmt;

use heck::ToUpperCamelCase;
use openapiv3::{OpenAPI, ReferenceOr, Schema, SchemaKind, Type};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

/// Where the spec lives, relative to the workspace root.
pub const SPEC_PATH: &str = "openapi/inkeep-analytics.yaml";

/// Where the committed snapshot of the generated client lives, relative to the workspace root.
pub const SNAPSHOT_PATH: &str = "crates/inkeep-analytics/generated/client.rs";

/// Where the committed snapshot of the generated httpmock helpers lives, relative to the workspace root.
pub const MOCK_SNAPSHOT_PATH: &str = "crates/inkeep-analytics-mock/generated/mock.rs";

/// The Rust path of the SDK crate, which the generated httpmock helpers name its types through.
pub const SDK_CRATE_PATH: &str = "inkeep_analytics";

/// The command that regenerates the snapshot; named in its header and in drift reports.
pub const GENERATE_COMMAND: &str = "cargo xtask generate";

/// Why code could not be generated.
#[derive(Debug)]
pub enum CodegenError {
    /// The spec is not valid YAML.
    Yaml(YamlError),
    /// The spec is YAML but not a valid OpenAPI 3.0 document; the error names where.
    Parse(serde_path_to_error::Error<serde_json::Error>),
    /// progenitor refused the spec.
    Progenitor(progenitor_impl::Error),
    /// The generated tokens did not parse as a Rust file.
    Syntax(syn::Error),
    /// The spec breaks one of the conventions the post-processing relies on.
    Spec(String),
}

impl fmt::Display for CodegenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodegenError::Yaml(e) => write!(f, "the spec is not valid YAML: {e}"),
            CodegenError::Parse(e) => write!(f, "the spec is not valid OpenAPI 3.0: {e}"),
            CodegenError::Progenitor(e) => write!(f, "progenitor refused the spec: {e}"),
            CodegenError::Syntax(e) => write!(f, "generated code does not parse: {e}"),
            CodegenError::Spec(e) => write!(f, "the spec breaks a generation convention: {e}"),
        }
    }
}

impl std::error::Error for CodegenError {}

/// Parses the spec text.
pub fn parse_spec(spec_text: &str) -> Result<OpenAPI, CodegenError> {
    let document = yaml_to_json_text(spec_text).map_err(CodegenError::Yaml)?;
    serde_path_to_error::deserialize(&mut serde_json::Deserializer::from_str(&document))
        .map_err(CodegenError::Parse)
}

/// A fingerprint of the spec text with line endings normalised (64-bit FNV-1a, in hex), named in
/// the generated header to say which spec a snapshot came from. It detects edits, not tampering;
/// the drift check compares the whole text. A hash this small keeps a cryptographic hash crate
/// (and its six dependencies) out of every user's build.
pub fn spec_hash(spec_text: &str) -> String {
    let normalized = spec_text.replace("\r\n", "\n");
    let hash = normalized
        .bytes()
        .fold(0xcbf2_9ce4_8422_2325_u64, |hash, byte| {
            (hash ^ u64::from(byte)).wrapping_mul(0x0100_0000_01b3)
        });
    format!("{hash:016x}")
}

/// The progenitor settings used for the SDK.
pub fn settings() -> progenitor_impl::GenerationSettings {
    let mut settings = progenitor_impl::GenerationSettings::new();
    settings
        .with_interface(progenitor_impl::InterfaceStyle::Builder)
        .with_tag(progenitor_impl::TagStyle::Merged)
        .with_derive("schemars::JsonSchema")
        .with_derive("PartialEq")
        // The hand-written layer keeps the API key and client settings here; the generated
        // methods pass it to the hooks in `crate::transport::hooks`.
        .with_inner_type(quote!(crate::transport::state::ClientState))
        .with_replacement(
            "JsonNumber",
            "::serde_json::Number",
            [
                progenitor_impl::TypeImpl::Display,
                progenitor_impl::TypeImpl::FromStr,
            ]
            .into_iter(),
        );
    settings
}

/// Generates the client source (header included) from the spec text.
pub fn generate_client(spec_text: &str) -> Result<String, CodegenError> {
    let mut spec = parse_spec(spec_text)?;
    let open_types = OpenTypes::collect(&spec)?;
    keep_unknown_keys(&mut spec);

    let mut generator = progenitor_impl::Generator::new(&settings());
    let tokens = generator
        .generate_tokens(&spec)
        .map_err(CodegenError::Progenitor)?;
    let mut file: syn::File = syn::parse2(tokens).map_err(CodegenError::Syntax)?;
    open_types.apply(&mut file)?;
    let types = types_module(&mut file)?;
    builders::default_optional_fields(types)?;
    let tests: syn::File =
        syn::parse2(builders::builder_tests(&spec, types)?).map_err(CodegenError::Syntax)?;
    types.extend(tests.items);
    let table: syn::File = syn::parse2(operation_table(&spec)?).map_err(CodegenError::Syntax)?;
    file.items.extend(table.items);

    // progenitor's usage sketches name variables they never define, so they are marked
    // `ignore`; shown as text they document the same and do not count as ignored doctests.
    let body = prettyplease::unparse(&file).replace("```ignore", "```text");
    Ok(format!(
        "// @generated by `{GENERATE_COMMAND}` from `{SPEC_PATH}` (fnv1a-64 {hash}).\n\
         // Do not edit: change the spec and regenerate. progenitor {progenitor}.\n\n{body}",
        hash = spec_hash(spec_text),
        progenitor = PROGENITOR_VERSION,
    ))
}

/// Generates the typed httpmock helpers (header included) from the spec text, with the same
/// spec preparation and settings as [`generate_client`], so that they name exactly its types.
///
/// The helpers only name the SDK's types (as `inkeep_analytics::types::X`) and never define
/// them, so the open enums and unions of the client need no post-processing here; the
/// corrections they do need are in `codegen/mocks.rs`.
pub fn generate_mocks(spec_text: &str) -> Result<String, CodegenError> {
    let mut spec = parse_spec(spec_text)?;
    keep_unknown_keys(&mut spec);

    let mut generator = progenitor_impl::Generator::new(&settings());
    let tokens = generator
        .httpmock(&spec, SDK_CRATE_PATH)
        .map_err(CodegenError::Progenitor)?;
    let mut file: syn::File = syn::parse2(tokens).map_err(CodegenError::Syntax)?;
    mocks::fix(&spec, &mut file)?;

    let body = prettyplease::unparse(&file);
    Ok(format!(
        "// @generated by `{GENERATE_COMMAND}` from `{SPEC_PATH}` (fnv1a-64 {hash}).\n\
         // Do not edit: change the spec and regenerate. progenitor {progenitor} (httpmock helpers).\n\n{body}",
        hash = spec_hash(spec_text),
        progenitor = PROGENITOR_VERSION,
    ))
}

/// The progenitor version the workspace pins; part of the header so a generator bump shows up as drift.
pub const PROGENITOR_VERSION: &str = "0.15.1";

/// The name of the SDK's `Client` method for each operation whose method is not named after its
/// `operationId` in snake case. The generated operation table and the mock helpers take their names
/// from here, so this is the one place that says which method calls which operation.
const CLIENT_METHOD_NAMES: &[(&str, &str)] = &[
    ("getAllConversation", "list_conversations"),
    ("getAllFeedback", "list_feedback"),
    ("getFeedbackById", "get_feedback"),
    ("deleteFeedbackById", "delete_feedback"),
];

/// The name of the SDK's `Client` method that calls the operation `operation_id`.
pub fn client_method_name(operation_id: &str) -> String {
    CLIENT_METHOD_NAMES
        .iter()
        .find(|(id, _)| *id == operation_id)
        .map(|(_, name)| (*name).to_string())
        .unwrap_or_else(|| heck::ToSnakeCase::to_snake_case(operation_id))
}

/// The security scheme that marks an operation as accepting a web integration key.
pub const WEB_KEY_SCHEME: &str = "webIntegrationKey";

/// A table of what the spec says of each operation, which the hand-written hooks read by the
/// method name progenitor passes them (auth kinds, the media type to accept).
fn operation_table(spec: &OpenAPI) -> Result<TokenStream, CodegenError> {
    let mut rows = Vec::new();
    for (path, item) in &spec.paths.paths {
        let ReferenceOr::Item(item) = item else {
            return Err(CodegenError::Spec(format!("path {path} is a reference")));
        };
        for (method, operation) in item.iter() {
            let id = operation
                .operation_id
                .clone()
                .ok_or_else(|| CodegenError::Spec(format!("{method} {path} has no operationId")))?;
            let method_name = heck::ToSnakeCase::to_snake_case(id.as_str());
            let client_method = client_method_name(&id);
            let http_method = method.to_uppercase();
            let security = operation.security.as_ref().or(spec.security.as_ref());
            let accepts_web_key = security.is_some_and(|requirements| {
                requirements
                    .iter()
                    .any(|requirement| requirement.contains_key(WEB_KEY_SCHEME))
            });
            let media_type = operation
                .responses
                .responses
                .iter()
                .find(|(status, _)| status.to_string().starts_with('2'))
                .and_then(|(_, response)| match response {
                    ReferenceOr::Item(response) => response.content.keys().next().cloned(),
                    ReferenceOr::Reference { .. } => None,
                })
                .unwrap_or_else(|| "application/json".to_string());
            rows.push(quote! {
                Operation {
                    id: #id,
                    method_name: #method_name,
                    client_method: #client_method,
                    http_method: #http_method,
                    path: #path,
                    accepts_web_key: #accepts_web_key,
                    response_media_type: #media_type,
                }
            });
        }
    }
    Ok(quote! {
        /// What the spec says of each operation, for the hand-written layer.
        pub mod operations {
            /// One operation of the spec.
            #[derive(Clone, Copy, Debug, PartialEq, Eq)]
            pub struct Operation {
                /// The spec's `operationId`.
                pub id: &'static str,
                /// The generated method's name, which progenitor passes to the client hooks.
                pub method_name: &'static str,
                /// The name of the SDK's `Client` method that calls it, which the mock helpers share.
                pub client_method: &'static str,
                /// The HTTP method, upper case.
                pub http_method: &'static str,
                /// The path template.
                pub path: &'static str,
                /// Whether a web integration key may call it (otherwise an API integration key is needed).
                pub accepts_web_key: bool,
                /// The media type of its success response.
                pub response_media_type: &'static str,
            }

            /// Every operation, in the spec's order.
            pub const ALL: &[Operation] = &[#(#rows),*];

            /// The operation whose generated method is `method_name`.
            pub fn by_method_name(method_name: &str) -> ::std::option::Option<&'static Operation> {
                ALL.iter().find(|operation| operation.method_name == method_name)
            }

            /// The operation that the SDK's `Client` method `client_method` calls.
            pub fn by_client_method(client_method: &str) -> ::std::option::Option<&'static Operation> {
                ALL.iter().find(|operation| operation.client_method == client_method)
            }

            /// The operation whose `operationId` is `id`.
            pub fn by_id(id: &str) -> ::std::option::Option<&'static Operation> {
                ALL.iter().find(|operation| operation.id == id)
            }
        }
    })
}

/// Adds `additionalProperties: {}` to every object schema that has properties and does not say
/// otherwise, so that typify generates a flattened `extra` map instead of silently ignoring keys.
fn keep_unknown_keys(spec: &mut OpenAPI) {
    let Some(components) = spec.components.as_mut() else {
        return;
    };
    for schema in components.schemas.values_mut() {
        if let ReferenceOr::Item(schema) = schema {
            keep_unknown_keys_in(schema);
        }
    }
}

fn keep_unknown_keys_in(schema: &mut Schema) {
    match &mut schema.schema_kind {
        SchemaKind::Type(Type::Object(object)) => {
            if !object.properties.is_empty() && object.additional_properties.is_none() {
                object.additional_properties = Some(openapiv3::AdditionalProperties::Schema(
                    Box::new(ReferenceOr::Item(Schema {
                        schema_data: Default::default(),
                        schema_kind: SchemaKind::Any(Default::default()),
                    })),
                ));
            }
            for property in object.properties.values_mut() {
                if let ReferenceOr::Item(property) = property {
                    keep_unknown_keys_in(property);
                }
            }
        }
        SchemaKind::Type(Type::Array(array)) => {
            if let Some(ReferenceOr::Item(items)) = array.items.as_mut() {
                keep_unknown_keys_in(items);
            }
        }
        SchemaKind::OneOf { one_of: schemas }
        | SchemaKind::AnyOf { any_of: schemas }
        | SchemaKind::AllOf { all_of: schemas } => {
            for schema in schemas {
                if let ReferenceOr::Item(schema) = schema {
                    keep_unknown_keys_in(schema);
                }
            }
        }
        _ => {}
    }
}

/// A named string enum of the spec, generated as an open enum.
struct OpenEnum {
    name: String,
    description: Option<String>,
    values: Vec<String>,
}

/// A discriminated `oneOf` of the spec, generated as an open union.
struct OpenUnion {
    name: String,
    description: Option<String>,
    property: String,
    /// Discriminator value to the name of the variant's schema.
    variants: BTreeMap<String, String>,
}

/// The types whose typify output is replaced by open versions.
struct OpenTypes {
    enums: Vec<OpenEnum>,
    unions: Vec<OpenUnion>,
}

impl OpenTypes {
    fn collect(spec: &OpenAPI) -> Result<Self, CodegenError> {
        let mut enums = Vec::new();
        let mut unions = Vec::new();
        let Some(components) = spec.components.as_ref() else {
            return Ok(Self { enums, unions });
        };
        for (name, schema) in &components.schemas {
            let ReferenceOr::Item(schema) = schema else {
                continue;
            };
            let description = schema.schema_data.description.clone();
            match &schema.schema_kind {
                SchemaKind::Type(Type::String(string)) if !string.enumeration.is_empty() => {
                    let values = string
                        .enumeration
                        .iter()
                        .map(|value| {
                            value.clone().ok_or_else(|| {
                                CodegenError::Spec(format!(
                                    "enum {name} lists null; use `nullable` at the place of use"
                                ))
                            })
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    enums.push(OpenEnum {
                        name: name.clone(),
                        description,
                        values,
                    });
                }
                SchemaKind::OneOf { .. } => {
                    if let Some(discriminator) = &schema.schema_data.discriminator {
                        let mut variants = BTreeMap::new();
                        for (value, reference) in &discriminator.mapping {
                            let target = reference
                                .strip_prefix("#/components/schemas/")
                                .ok_or_else(|| {
                                    CodegenError::Spec(format!(
                                        "discriminator mapping of {name} must point at a component schema"
                                    ))
                                })?;
                            variants.insert(value.clone(), target.to_string());
                        }
                        if variants.is_empty() {
                            return Err(CodegenError::Spec(format!(
                                "discriminator of {name} needs an explicit mapping"
                            )));
                        }
                        unions.push(OpenUnion {
                            name: name.clone(),
                            description,
                            property: discriminator.property_name.clone(),
                            variants,
                        });
                    }
                }
                _ => {}
            }
        }
        Ok(Self { enums, unions })
    }

    /// Replaces typify's closed enums in `mod types` by open ones.
    fn apply(&self, file: &mut syn::File) -> Result<(), CodegenError> {
        let items = types_module(file)?;

        let replaced: Vec<&str> = self
            .enums
            .iter()
            .map(|e| e.name.as_str())
            .chain(self.unions.iter().map(|u| u.name.as_str()))
            .collect();
        for name in &replaced {
            let before = items.len();
            items.retain(|item| !defines_or_implements(item, name));
            if items.len() == before {
                return Err(CodegenError::Spec(format!(
                    "typify emitted no type named {name}"
                )));
            }
        }

        let type_names: Vec<String> = items
            .iter()
            .filter_map(|item| match item {
                syn::Item::Struct(item) => Some(item.ident.to_string()),
                syn::Item::Enum(item) => Some(item.ident.to_string()),
                _ => None,
            })
            .chain(replaced.iter().map(|name| name.to_string()))
            .collect();
        decoders::gate_json_schema(items)?;
        let objects = decoders::plan_objects(items)?;
        let mut extra = decoders::object_tokens(&objects, &type_names)?;
        extra.extend(decoders::plain_kind_unions(items)?);
        for open_enum in &self.enums {
            extra.extend(open_enum_tokens(open_enum));
        }
        for open_union in &self.unions {
            extra.extend(open_union_tokens(open_union, &objects)?);
        }
        let extra: syn::File = syn::parse2(extra).map_err(CodegenError::Syntax)?;
        // Put them before typify's `builder` and `error` modules, with the other types.
        let insert_at = items
            .iter()
            .position(|item| matches!(item, syn::Item::Mod(_)))
            .unwrap_or(items.len());
        items.splice(insert_at..insert_at, extra.items);
        Ok(())
    }
}

/// The items of the generated `types` module.
fn types_module(file: &mut syn::File) -> Result<&mut Vec<syn::Item>, CodegenError> {
    file.items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(module) if module.ident == "types" => {
                module.content.as_mut().map(|(_, items)| items)
            }
            _ => None,
        })
        .ok_or_else(|| CodegenError::Spec("progenitor emitted no `types` module".into()))
}

/// Whether `item` is the definition of the type `name` or an `impl` whose self type is `name`.
fn defines_or_implements(item: &syn::Item, name: &str) -> bool {
    match item {
        syn::Item::Enum(item) => item.ident == name,
        syn::Item::Struct(item) => item.ident == name,
        syn::Item::Impl(item) => match item.self_ty.as_ref() {
            syn::Type::Path(path) => {
                path.qself.is_none()
                    && path.path.segments.len() == 1
                    && path.path.segments[0].ident == name
            }
            _ => false,
        },
        _ => false,
    }
}

/// What `target` adds to `union`: `target` less the prefix and suffix they share, when that is a
/// capitalised identifier.
fn distinctive_part<'a>(target: &'a str, union: &str) -> Option<&'a str> {
    let prefix = target
        .chars()
        .zip(union.chars())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>();
    let rest = &target[prefix..];
    let union_rest = &union[prefix..];
    let suffix = rest
        .chars()
        .rev()
        .zip(union_rest.chars().rev())
        .take_while(|(a, b)| a == b)
        .map(|(a, _)| a.len_utf8())
        .sum::<usize>();
    let part = &rest[..rest.len() - suffix];
    let is_identifier = part.chars().next().is_some_and(|c| c.is_ascii_uppercase())
        && part.chars().all(|c| c.is_ascii_alphanumeric());
    is_identifier.then_some(part)
}

fn variant_ident(value: &str) -> syn::Ident {
    let name = value.to_upper_camel_case();
    match name.chars().next() {
        Some(first) if first.is_ascii_alphabetic() => format_ident!("{}", name),
        _ => format_ident!("V{}", name),
    }
}

fn doc_tokens(description: &Option<String>, fallback: &str) -> TokenStream {
    let text = description.clone().unwrap_or_else(|| fallback.to_string());
    quote!(#[doc = #text])
}

fn open_enum_tokens(open_enum: &OpenEnum) -> TokenStream {
    let name = format_ident!("{}", open_enum.name);
    let doc = doc_tokens(&open_enum.description, &open_enum.name);
    let values = &open_enum.values;
    let variants: Vec<syn::Ident> = values.iter().map(|v| variant_ident(v)).collect();
    let variant_docs: Vec<String> = values.iter().map(|v| format!("`{v}`")).collect();
    let known_list = values
        .iter()
        .map(|v| format!("`{v}`"))
        .collect::<Vec<_>>()
        .join(", ");
    let open_doc = format!(
        "This enum is open: values other than {known_list} decode into [`{}::Other`] and are sent back unchanged.",
        open_enum.name
    );
    let schema_name = &open_enum.name;
    quote! {
        #doc
        #[doc = ""]
        #[doc = #open_doc]
        #[derive(Clone, Debug, Eq, Hash, Ord, PartialEq, PartialOrd)]
        pub enum #name {
            #(
                #[doc = #variant_docs]
                #variants,
            )*
            /// A value this version of the spec does not list, kept as sent.
            Other(::std::string::String),
        }

        impl #name {
            /// The values this version of the spec lists.
            pub const KNOWN: &'static [&'static str] = &[#(#values),*];

            /// The value as it is on the wire.
            pub fn as_str(&self) -> &str {
                match self {
                    #(Self::#variants => #values,)*
                    Self::Other(value) => value.as_str(),
                }
            }

            /// Whether this value is one the spec does not list.
            pub fn is_other(&self) -> bool {
                matches!(self, Self::Other(_))
            }
        }

        impl ::std::fmt::Display for #name {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl ::std::convert::From<&str> for #name {
            fn from(value: &str) -> Self {
                match value {
                    #(#values => Self::#variants,)*
                    other => Self::Other(other.to_string()),
                }
            }
        }

        impl ::std::convert::From<::std::string::String> for #name {
            fn from(value: ::std::string::String) -> Self {
                match value.as_str() {
                    #(#values => Self::#variants,)*
                    _ => Self::Other(value),
                }
            }
        }

        impl ::std::str::FromStr for #name {
            type Err = ::std::convert::Infallible;
            fn from_str(value: &str) -> ::std::result::Result<Self, Self::Err> {
                Ok(Self::from(value))
            }
        }

        impl ::serde::Serialize for #name {
            fn serialize<S: ::serde::Serializer>(&self, serializer: S) -> ::std::result::Result<S::Ok, S::Error> {
                serializer.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                struct Visitor;
                impl<'de> ::serde::de::Visitor<'de> for Visitor {
                    type Value = #name;
                    fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                        f.write_str("a string")
                    }
                    fn visit_str<E: ::serde::de::Error>(self, value: &str) -> ::std::result::Result<#name, E> {
                        Ok(#name::from(value))
                    }
                    fn visit_string<E: ::serde::de::Error>(self, value: ::std::string::String) -> ::std::result::Result<#name, E> {
                        Ok(#name::from(value))
                    }
                }
                deserializer.deserialize_str(Visitor)
            }
        }

        #[cfg(feature = "schemars")]
        impl ::schemars::JsonSchema for #name {
            fn schema_name() -> ::std::string::String {
                #schema_name.to_string()
            }
            fn json_schema(_: &mut ::schemars::r#gen::SchemaGenerator) -> ::schemars::schema::Schema {
                ::schemars::schema::SchemaObject {
                    instance_type: ::std::option::Option::Some(::schemars::schema::InstanceType::String.into()),
                    metadata: ::std::option::Option::Some(::std::boxed::Box::new(::schemars::schema::Metadata {
                        description: ::std::option::Option::Some(#open_doc.to_string()),
                        examples: vec![#(::serde_json::Value::from(#values)),*],
                        ..::std::default::Default::default()
                    })),
                    ..::std::default::Default::default()
                }
                .into()
            }
        }
    }
}

fn open_union_tokens(
    open_union: &OpenUnion,
    objects: &[decoders::ObjectPlan],
) -> Result<TokenStream, CodegenError> {
    let name = format_ident!("{}", open_union.name);
    let doc = doc_tokens(&open_union.description, &open_union.name);
    let property = &open_union.property;
    let values: Vec<&String> = open_union.variants.keys().collect();
    let targets: Vec<syn::Ident> = open_union
        .variants
        .values()
        .map(|target| format_ident!("{}", target))
        .collect();
    // `OpenAiConversation` in the union `Conversation` becomes the variant `OpenAi`, and
    // `InsertMessageEvent` in `InsertEvent` becomes `Message`.
    let variants: Vec<syn::Ident> = open_union
        .variants
        .iter()
        .map(
            |(value, target)| match distinctive_part(target, &open_union.name) {
                Some(part) => format_ident!("{}", part),
                None => variant_ident(value),
            },
        )
        .collect();
    let variant_docs: Vec<String> = values
        .iter()
        .map(|value| format!("`{property}: \"{value}\"`"))
        .collect();
    let unknown_doc = format!(
        "A kind this version of the spec does not list, kept as the JSON the server sent. Its `{property}` is in [`{}::kind`].",
        open_union.name
    );
    let target_names: Vec<String> = open_union.variants.values().cloned().collect();
    let arms = decoders::union_arms(&open_union.name, &values, &variants, &target_names, objects)?;
    Ok(quote! {
        #doc
        #[derive(Clone, Debug, PartialEq, ::serde::Serialize)]
        #[cfg_attr(feature = "schemars", derive(::schemars::JsonSchema))]
        #[serde(untagged)]
        pub enum #name {
            #(
                #[doc = #variant_docs]
                #variants(#targets),
            )*
            #[doc = #unknown_doc]
            Unknown(::serde_json::Value),
        }

        impl #name {
            /// The discriminator as sent (`None` only for an unknown kind that has none).
            pub fn kind(&self) -> ::std::option::Option<&str> {
                match self {
                    #(Self::#variants(_) => ::std::option::Option::Some(#values),)*
                    Self::Unknown(value) => value.get(#property).and_then(::serde_json::Value::as_str),
                }
            }

            /// Whether this is a kind the spec does not list.
            pub fn is_unknown(&self) -> bool {
                matches!(self, Self::Unknown(_))
            }
        }

        #(
            impl ::std::convert::From<#targets> for #name {
                fn from(value: #targets) -> Self {
                    Self::#variants(value)
                }
            }
        )*

        impl crate::decode::DecodeUnion for #name {
            const PROPERTY: &'static str = #property;

            const KINDS: &'static [&'static str] = &[#(#values),*];

            fn decode_kind<'de, A: ::serde::de::MapAccess<'de>>(
                kind: &str,
                pending: crate::decode::Pending<'de>,
                map: &mut A,
            ) -> ::std::result::Result<Self, A::Error> {
                match kind {
                    #arms
                    _ => ::std::result::Result::Err(::serde::de::Error::unknown_variant(kind, Self::KINDS)),
                }
            }

            fn unknown(value: ::serde_json::Value) -> Self {
                Self::Unknown(value)
            }
        }

        impl<'de> ::serde::Deserialize<'de> for #name {
            fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                deserializer.deserialize_any(crate::decode::UnionVisitor::<Self>::new())
            }
        }
    })
}
