//! Makes typify's builders build without the fields a caller need not give, and writes a test per built type.
//!
//! typify's builder starts every field it cannot default as an error ("no value supplied for
//! extra"), and the flattened `extra` map that `keep_unknown_keys` adds is one of them, so every
//! builder of an object failed at run time. Here the `extra` map starts empty and every `Option`
//! field starts as `None` (a required but nullable key is then sent as `null`, which the spec
//! allows), so a builder needs exactly the required, non-nullable fields.
//!
//! The test module written here builds every struct of `types` through its builder with only those
//! fields and compares what it serialises to with a minimal JSON object derived from the spec, so
//! a type the spec adds is covered without anyone writing its test.

use std::collections::BTreeMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use openapiv3::{OpenAPI, ReferenceOr, Schema, SchemaKind, Type};
use proc_macro2::TokenStream;
use quote::{format_ident, quote};

use super::CodegenError;

/// A field of a generated struct, as the builder and the wire see it.
struct Field {
    ident: syn::Ident,
    /// The key in JSON.
    key: String,
    ty: syn::Type,
    flattened: bool,
}

/// The named fields of every struct in `types`.
fn structs(items: &[syn::Item]) -> BTreeMap<String, Vec<Field>> {
    let mut structs = BTreeMap::new();
    for item in items {
        let syn::Item::Struct(item) = item else {
            continue;
        };
        let syn::Fields::Named(named) = &item.fields else {
            continue;
        };
        let fields = named
            .named
            .iter()
            .filter_map(|field| {
                let ident = field.ident.clone()?;
                let (key, flattened) = serde_key(&field.attrs, &ident);
                Some(Field {
                    ident,
                    key,
                    ty: field.ty.clone(),
                    flattened,
                })
            })
            .collect();
        structs.insert(item.ident.to_string(), fields);
    }
    structs
}

/// The JSON key of a field (its `rename`, or its name) and whether it is `#[serde(flatten)]`.
fn serde_key(attrs: &[syn::Attribute], ident: &syn::Ident) -> (String, bool) {
    let mut key = ident.to_string().trim_start_matches("r#").to_string();
    let mut flattened = false;
    for attr in attrs.iter().filter(|attr| attr.path().is_ident("serde")) {
        let _ = attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("flatten") {
                flattened = true;
            }
            if meta.input.peek(syn::Token![=]) {
                let value: syn::Expr = meta.value()?.parse()?;
                if meta.path.is_ident("rename")
                    && let syn::Expr::Lit(syn::ExprLit {
                        lit: syn::Lit::Str(value),
                        ..
                    }) = value
                {
                    key = value.value();
                }
            }
            Ok(())
        });
    }
    (key, flattened)
}

/// Whether `ty` is `Option<..>`, however it is spelled.
fn is_option(ty: &syn::Type) -> bool {
    matches!(ty, syn::Type::Path(path)
        if path.path.segments.last().is_some_and(|segment| segment.ident == "Option"))
}

/// The `T` of a builder field typed `Result<T, String>`.
fn builder_value_type(ty: &syn::Type) -> Option<&syn::Type> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if last.ident != "Result" {
        return None;
    }
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(ty) => Some(ty),
        _ => None,
    }
}

/// The items of `types::builder`.
fn builder_module(items: &mut [syn::Item]) -> Result<&mut Vec<syn::Item>, CodegenError> {
    items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(module) if module.ident == "builder" => {
                module.content.as_mut().map(|(_, items)| items)
            }
            _ => None,
        })
        .ok_or_else(|| CodegenError::Spec("typify emitted no `types::builder` module".into()))
}

/// Starts the flattened `extra` map and every `Option` field of each builder with its default
/// instead of a "no value supplied" error.
pub(crate) fn default_optional_fields(types: &mut [syn::Item]) -> Result<(), CodegenError> {
    let structs = structs(types);
    let builders = builder_module(types)?;
    let builder_field_types: BTreeMap<String, BTreeMap<String, syn::Type>> = builders
        .iter()
        .filter_map(|item| match item {
            syn::Item::Struct(item) => {
                let fields = item
                    .fields
                    .iter()
                    .filter_map(|field| {
                        let ident = field.ident.as_ref()?.to_string();
                        Some((ident, builder_value_type(&field.ty)?.clone()))
                    })
                    .collect();
                Some((item.ident.to_string(), fields))
            }
            _ => None,
        })
        .collect();
    let mut fixed = 0;
    for item in builders.iter_mut() {
        let syn::Item::Impl(item) = item else {
            continue;
        };
        let is_default = item.trait_.as_ref().is_some_and(|(path, _)| {
            path.segments
                .last()
                .is_some_and(|segment| segment.ident == "Default")
        });
        let syn::Type::Path(self_ty) = item.self_ty.as_ref() else {
            continue;
        };
        let Some(name) = self_ty.path.get_ident().map(ToString::to_string) else {
            continue;
        };
        if !is_default {
            continue;
        }
        let (Some(fields), Some(field_types)) =
            (structs.get(&name), builder_field_types.get(&name))
        else {
            return Err(CodegenError::Spec(format!(
                "the builder {name} builds no struct of `types`"
            )));
        };
        let Some(syn::ImplItem::Fn(default)) = item.items.first_mut() else {
            return Err(CodegenError::Spec(format!(
                "the Default impl of builder {name} has no fn"
            )));
        };
        let Some(syn::Stmt::Expr(syn::Expr::Struct(init), None)) = default.block.stmts.last_mut()
        else {
            return Err(CodegenError::Spec(format!(
                "the Default impl of builder {name} does not end in a struct expression"
            )));
        };
        for value in init.fields.iter_mut() {
            let syn::Member::Named(ident) = &value.member else {
                continue;
            };
            let flattened = fields
                .iter()
                .any(|field| field.ident == *ident && field.flattened);
            let optional = field_types.get(&ident.to_string()).is_some_and(is_option);
            if flattened || optional {
                value.expr = syn::parse_quote!(Ok(Default::default()));
            }
        }
        fixed += 1;
    }
    if fixed == 0 {
        return Err(CodegenError::Spec(
            "typify emitted no Default impl in `types::builder`".into(),
        ));
    }
    Ok(())
}

/// A minimal JSON value, rendered by hand so that code generation needs no JSON crate.
enum Json {
    Null,
    Bool(bool),
    Number(i64),
    String(String),
    Array(Vec<Json>),
    Object(Vec<(String, Json)>),
    /// JSON text taken as is, such as a `default` from the spec.
    Raw(String),
}

impl Json {
    fn render(&self) -> String {
        match self {
            Json::Null => "null".into(),
            Json::Bool(value) => value.to_string(),
            Json::Number(value) => value.to_string(),
            Json::String(value) => string_literal(value),
            Json::Raw(text) => text.clone(),
            Json::Array(values) => format!(
                "[{}]",
                values
                    .iter()
                    .map(Json::render)
                    .collect::<Vec<_>>()
                    .join(",")
            ),
            Json::Object(entries) => format!(
                "{{{}}}",
                entries
                    .iter()
                    .map(|(key, value)| format!("{}:{}", string_literal(key), value.render()))
                    .collect::<Vec<_>>()
                    .join(",")
            ),
        }
    }
}

fn string_literal(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if u32::from(c) < 0x20 => out.push_str(&format!("\\u{:04x}", u32::from(c))),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// How deep the required fields of a sample may nest before the spec is taken to be cyclic.
const MAX_DEPTH: usize = 32;

/// Reads the spec's schemas to derive the smallest valid JSON of each.
struct Samples<'a> {
    spec: &'a OpenAPI,
}

impl<'a> Samples<'a> {
    fn component(&self, reference: &str) -> Result<&'a Schema, CodegenError> {
        let name = reference
            .strip_prefix("#/components/schemas/")
            .ok_or_else(|| CodegenError::Spec(format!("{reference} is not a component schema")))?;
        match self
            .spec
            .components
            .as_ref()
            .and_then(|components| components.schemas.get(name))
        {
            Some(ReferenceOr::Item(schema)) => Ok(schema),
            _ => Err(CodegenError::Spec(format!(
                "{reference} is missing or a reference"
            ))),
        }
    }

    fn resolve(&self, schema: &'a ReferenceOr<Schema>) -> Result<&'a Schema, CodegenError> {
        match schema {
            ReferenceOr::Item(schema) => Ok(schema),
            ReferenceOr::Reference { reference } => self.component(reference),
        }
    }

    fn resolve_boxed(
        &self,
        schema: &'a ReferenceOr<Box<Schema>>,
    ) -> Result<&'a Schema, CodegenError> {
        match schema {
            ReferenceOr::Item(schema) => Ok(schema),
            ReferenceOr::Reference { reference } => self.component(reference),
        }
    }

    /// The schema a single-entry `allOf` wraps (how the spec makes a reference nullable).
    fn unwrap(&self, schema: &'a Schema) -> Result<&'a Schema, CodegenError> {
        match &schema.schema_kind {
            SchemaKind::AllOf { all_of } if all_of.len() == 1 => {
                self.unwrap(self.resolve(&all_of[0])?)
            }
            _ => Ok(schema),
        }
    }

    fn is_nullable(&self, schema: &'a Schema) -> Result<bool, CodegenError> {
        Ok(schema.schema_data.nullable || self.unwrap(schema)?.schema_data.nullable)
    }

    /// The smallest valid JSON of `schema`: required keys (`null` for a nullable one) and the
    /// defaults of optional ones, the first enum value or union variant, the fewest array items.
    fn sample(&self, schema: &'a Schema, depth: usize) -> Result<Json, CodegenError> {
        if depth > MAX_DEPTH {
            return Err(CodegenError::Spec(
                "the required fields of a schema nest without end".into(),
            ));
        }
        let schema = self.unwrap(schema)?;
        Ok(match &schema.schema_kind {
            SchemaKind::Type(Type::String(string)) => {
                if let Some(Some(first)) = string.enumeration.first() {
                    Json::String(first.clone())
                } else if matches!(
                    &string.format,
                    openapiv3::VariantOrUnknownOrEmpty::Item(openapiv3::StringFormat::DateTime)
                ) {
                    Json::String("2025-01-01T00:00:00Z".into())
                } else {
                    let length = string.min_length.unwrap_or(1).max(1);
                    Json::String("x".repeat(length))
                }
            }
            SchemaKind::Type(Type::Integer(integer)) => {
                Json::Number(integer.minimum.unwrap_or(1).max(1))
            }
            SchemaKind::Type(Type::Number(_)) => Json::Number(1),
            SchemaKind::Type(Type::Boolean(_)) => Json::Bool(true),
            SchemaKind::Type(Type::Array(array)) => {
                let count = array.min_items.unwrap_or(0);
                let mut items = Vec::new();
                if count > 0 {
                    let item = array.items.as_ref().ok_or_else(|| {
                        CodegenError::Spec("an array with minItems has no items schema".into())
                    })?;
                    let item = self.resolve_boxed(item)?;
                    for _ in 0..count {
                        items.push(self.sample(item, depth + 1)?);
                    }
                }
                Json::Array(items)
            }
            SchemaKind::Type(Type::Object(object)) => {
                let mut entries = Vec::new();
                for (key, property) in &object.properties {
                    let property = self.resolve_boxed(property)?;
                    if !object.required.contains(key) {
                        // typify fills in an optional property's default and sends it.
                        if let Some(default) = &property.schema_data.default {
                            entries.push((key.clone(), Json::Raw(default.to_string())));
                        }
                        continue;
                    }
                    let value = if self.is_nullable(property)? {
                        Json::Null
                    } else {
                        self.sample(property, depth + 1)?
                    };
                    entries.push((key.clone(), value));
                }
                Json::Object(entries)
            }
            SchemaKind::OneOf { one_of } => self.first_variant(schema, one_of, depth)?,
            SchemaKind::AnyOf { any_of } => self.first_variant(schema, any_of, depth)?,
            SchemaKind::Any(_) => Json::Null,
            _ => {
                return Err(CodegenError::Spec(
                    "a required field has a schema kind codegen/builders.rs does not sample".into(),
                ));
            }
        })
    }

    fn first_variant(
        &self,
        schema: &'a Schema,
        variants: &'a [ReferenceOr<Schema>],
        depth: usize,
    ) -> Result<Json, CodegenError> {
        if let Some(discriminator) = &schema.schema_data.discriminator
            && let Some(reference) = discriminator.mapping.values().next()
        {
            return self.sample(self.component(reference)?, depth + 1);
        }
        let first = variants
            .first()
            .ok_or_else(|| CodegenError::Spec("a oneOf or anyOf lists nothing".into()))?;
        self.sample(self.resolve(first)?, depth + 1)
    }

    /// The inline object schema a property holds, directly or as the items of an array.
    fn inline_object(&self, property: &'a ReferenceOr<Box<Schema>>) -> Option<&'a Schema> {
        let ReferenceOr::Item(schema) = property else {
            return None;
        };
        let schema: &'a Schema = schema;
        let schema = match &schema.schema_kind {
            SchemaKind::Type(Type::Array(array)) => match &array.items {
                Some(ReferenceOr::Item(items)) => items,
                _ => return None,
            },
            _ => schema,
        };
        match &schema.schema_kind {
            SchemaKind::Type(Type::Object(object)) if !object.properties.is_empty() => Some(schema),
            _ => None,
        }
    }
}

/// The name of the struct of `types` that `ty` holds, through `Option`, `Vec` and `Box`.
fn held_struct(ty: &syn::Type) -> Option<String> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    if let syn::PathArguments::AngleBracketed(args) = &last.arguments
        && matches!(last.ident.to_string().as_str(), "Option" | "Vec" | "Box")
    {
        return match args.args.first()? {
            syn::GenericArgument::Type(inner) => held_struct(inner),
            _ => None,
        };
    }
    let first = path.path.segments.first()?;
    let in_types =
        path.path.segments.len() == 1 || (path.path.segments.len() == 2 && first.ident == "super");
    in_types.then(|| last.ident.to_string())
}

/// A `#[cfg(test)]` module that builds every struct of `types` through its builder with only its
/// required, non-nullable fields and checks the JSON it serialises to against the spec.
pub(crate) fn builder_tests(
    spec: &OpenAPI,
    types: &[syn::Item],
) -> Result<TokenStream, CodegenError> {
    let structs = structs(types);
    let with_builder: Vec<String> = types
        .iter()
        .filter_map(|item| match item {
            syn::Item::Impl(item) if item.trait_.is_none() => {
                let has_builder = item.items.iter().any(|item| {
                    matches!(item, syn::ImplItem::Fn(method) if method.sig.ident == "builder")
                });
                let syn::Type::Path(path) = item.self_ty.as_ref() else {
                    return None;
                };
                has_builder.then(|| path.path.get_ident().map(ToString::to_string))?
            }
            _ => None,
        })
        .collect();

    // The schema of each struct: its component, or the inline object of the property that holds it.
    let samples = Samples { spec };
    let mut schemas: BTreeMap<String, &Schema> = BTreeMap::new();
    if let Some(components) = spec.components.as_ref() {
        for (name, schema) in &components.schemas {
            let ReferenceOr::Item(schema) = schema else {
                continue;
            };
            let rust_name = name.to_upper_camel_case();
            if structs.contains_key(&rust_name) {
                schemas.insert(rust_name, schema);
            }
        }
    }
    let mut pending: Vec<String> = schemas.keys().cloned().collect();
    while let Some(name) = pending.pop() {
        let (Some(schema), Some(fields)) = (schemas.get(&name).copied(), structs.get(&name)) else {
            continue;
        };
        let SchemaKind::Type(Type::Object(object)) = &samples.unwrap(schema)?.schema_kind else {
            continue;
        };
        for field in fields {
            let (Some(property), Some(held)) =
                (object.properties.get(&field.key), held_struct(&field.ty))
            else {
                continue;
            };
            if schemas.contains_key(&held) {
                continue;
            }
            if let Some(inline) = samples.inline_object(property) {
                schemas.insert(held.clone(), inline);
                pending.push(held);
            }
        }
    }

    let mut tests = TokenStream::new();
    for name in &with_builder {
        let (Some(schema), Some(fields)) = (schemas.get(name).copied(), structs.get(name)) else {
            return Err(CodegenError::Spec(format!(
                "no schema of the spec generates {name}, so codegen/builders.rs cannot test its builder"
            )));
        };
        let SchemaKind::Type(Type::Object(object)) = &samples.unwrap(schema)?.schema_kind else {
            return Err(CodegenError::Spec(format!(
                "{name} has a builder but its schema is not an object"
            )));
        };
        let mut setters = Vec::new();
        for field in fields.iter().filter(|field| !field.flattened) {
            if !object.required.contains(&field.key) {
                continue;
            }
            let Some(property) = object.properties.get(&field.key) else {
                return Err(CodegenError::Spec(format!(
                    "{name}.{} has no property {} in the spec",
                    field.ident, field.key
                )));
            };
            let property = samples.resolve_boxed(property)?;
            if samples.is_nullable(property)? {
                continue;
            }
            let value = samples.sample(property, 0)?.render();
            let ident = &field.ident;
            let ty = &field.ty;
            setters.push(quote!(.#ident(::serde_json::from_str::<#ty>(#value)?)));
        }
        let expected = samples.sample(schema, 0)?.render();
        let ty = format_ident!("{}", name);
        let test = format_ident!("{}_builds_from_its_required_fields", name.to_snake_case());
        tests.extend(quote! {
            #[test]
            fn #test() -> ::std::result::Result<(), ::std::boxed::Box<dyn ::std::error::Error>> {
                let built: #ty = #ty::builder() #(#setters)* .try_into()?;
                let expected: ::serde_json::Value = ::serde_json::from_str(#expected)?;
                let serialized = ::serde_json::to_value(&built)?;
                let decoded: #ty = ::serde_json::from_value(expected.clone())?;
                assert_eq!(serialized, expected);
                assert_eq!(decoded, built);
                Ok(())
            }
        });
    }
    Ok(quote! {
        /// Every struct built through its builder from its required fields alone, checked against
        /// the minimal JSON the spec allows (written by `codegen/builders.rs`).
        #[cfg(test)]
        mod builders_build {
            use super::*;

            #tests
        }
    })
}
