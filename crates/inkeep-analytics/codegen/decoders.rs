//! Single-pass `Deserialize` impls for the generated types, so that forward compatibility costs no buffering.
//!
//! serde's `#[serde(flatten)]` (how typify keeps unknown keys) reads every object into an
//! intermediate buffer before it fills the struct, and a union told apart by a key that need not
//! come first would have to read the whole object as a `serde_json::Value`. Both roughly halve the
//! decoding speed of a page. Here each object with an `extra` map instead gets a "fields" struct
//! that the SDK's `decode` module fills key by key as they arrive; unions feed the few keys before
//! their discriminator to it afterwards; and the untagged unions of plain JSON kinds (a string or a
//! number, a string or a list) choose their variant from the kind of token they meet.

use proc_macro2::TokenStream;
use quote::{format_ident, quote};
use syn::punctuated::Punctuated;

use super::CodegenError;

/// The private module of `types` that holds the fields structs.
const FIELDS_MODULE: &str = "decode_fields";

/// How a field is filled when its key is absent.
enum WhenMissing {
    /// A required key, nullable or not: an error.
    Error,
    /// An optional `Option`: `None`.
    None,
    /// `#[serde(default)]`.
    Default,
    /// `#[serde(default = "path")]`.
    DefaultWith(syn::ExprPath),
}

struct FieldPlan {
    ident: syn::Ident,
    /// The key in JSON.
    key: String,
    ty: syn::Type,
    missing: WhenMissing,
}

/// An object struct of `types` that keeps unknown keys in `extra`.
pub(crate) struct ObjectPlan {
    pub(crate) name: String,
    fields: Vec<FieldPlan>,
}

impl ObjectPlan {
    pub(crate) fn fields_ident(&self) -> syn::Ident {
        format_ident!("{}Fields", self.name)
    }

    /// The path of the fields struct as seen from `types`.
    pub(crate) fn fields_path(&self) -> TokenStream {
        let module = format_ident!("{}", FIELDS_MODULE);
        let ident = self.fields_ident();
        quote!(#module::#ident)
    }
}

/// Whether `attrs` hold `#[serde(flatten)]`.
fn is_flattened(attrs: &[syn::Attribute]) -> bool {
    attrs.iter().any(|attr| {
        attr.path().is_ident("serde") && {
            let mut flatten = false;
            let _ = attr.parse_nested_meta(|meta| {
                if meta.path.is_ident("flatten") {
                    flatten = true;
                }
                // Skip values such as `rename = "x"` that are not ours to read here.
                if meta.input.peek(syn::Token![=]) {
                    meta.value()?.parse::<syn::Expr>()?;
                }
                Ok(())
            });
            flatten
        }
    })
}

/// Whether `ty` is `Option<..>`, however it is spelled.
fn is_option(ty: &syn::Type) -> bool {
    match ty {
        syn::Type::Path(path) => path
            .path
            .segments
            .last()
            .is_some_and(|segment| segment.ident == "Option"),
        _ => false,
    }
}

fn plan_field(struct_name: &str, field: &syn::Field) -> Result<FieldPlan, CodegenError> {
    let ident = field
        .ident
        .clone()
        .ok_or_else(|| CodegenError::Spec(format!("{struct_name} has an unnamed field")))?;
    let mut key = ident.to_string().trim_start_matches("r#").to_string();
    let mut deserialize_with_option = false;
    let mut default: Option<Option<syn::ExprPath>> = None;
    for attr in field
        .attrs
        .iter()
        .filter(|attr| attr.path().is_ident("serde"))
    {
        attr.parse_nested_meta(|meta| {
            let name = meta
                .path
                .get_ident()
                .map(ToString::to_string)
                .unwrap_or_default();
            match name.as_str() {
                "rename" => {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    key = value.value();
                }
                "deserialize_with" => {
                    let value: syn::LitStr = meta.value()?.parse()?;
                    if value.value() != "::std::option::Option::deserialize" {
                        return Err(meta.error("an unexpected deserialize_with"));
                    }
                    deserialize_with_option = true;
                }
                "default" => {
                    if meta.input.peek(syn::Token![=]) {
                        let value: syn::LitStr = meta.value()?.parse()?;
                        default = Some(Some(value.parse()?));
                    } else {
                        default = Some(None);
                    }
                }
                "skip_serializing_if" => {
                    meta.value()?.parse::<syn::LitStr>()?;
                }
                _ => {
                    return Err(meta.error("a serde attribute the decoder generator does not know"));
                }
            }
            Ok(())
        })
        .map_err(|error| {
            CodegenError::Spec(format!(
                "{struct_name}.{ident}: {error}; teach codegen/decoders.rs about it"
            ))
        })?;
    }
    let missing = match default {
        Some(Some(path)) => WhenMissing::DefaultWith(path),
        Some(None) => WhenMissing::Default,
        None if deserialize_with_option => WhenMissing::Error,
        None if is_option(&field.ty) => WhenMissing::None,
        None => WhenMissing::Error,
    };
    Ok(FieldPlan {
        ident,
        key,
        ty: field.ty.clone(),
        missing,
    })
}

/// Removes `Deserialize` from the derives of `attrs`.
fn drop_deserialize_derive(attrs: &mut [syn::Attribute]) -> Result<(), CodegenError> {
    for attr in attrs
        .iter_mut()
        .filter(|attr| attr.path().is_ident("derive"))
    {
        let paths = attr
            .parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)
            .map_err(CodegenError::Syntax)?;
        let kept: Vec<&syn::Path> = paths
            .iter()
            .filter(|path| {
                path.segments
                    .last()
                    .is_none_or(|segment| segment.ident != "Deserialize")
            })
            .collect();
        *attr = syn::parse_quote!(#[derive(#(#kept),*)]);
    }
    Ok(())
}

/// Finds every struct of `types` with a flattened `extra` map, takes its derived `Deserialize`
/// away, and returns what is needed to write a single-pass one.
pub(crate) fn plan_objects(items: &mut [syn::Item]) -> Result<Vec<ObjectPlan>, CodegenError> {
    let mut plans = Vec::new();
    for item in items.iter_mut() {
        let syn::Item::Struct(item) = item else {
            continue;
        };
        let syn::Fields::Named(named) = &item.fields else {
            continue;
        };
        let Some(extra) = named.named.iter().find(|field| is_flattened(&field.attrs)) else {
            continue;
        };
        let name = item.ident.to_string();
        if extra.ident.as_ref().is_none_or(|ident| ident != "extra") {
            return Err(CodegenError::Spec(format!(
                "{name} flattens a field other than `extra`"
            )));
        }
        let fields = named
            .named
            .iter()
            .filter(|field| !is_flattened(&field.attrs))
            .map(|field| plan_field(&name, field))
            .collect::<Result<Vec<_>, _>>()?;
        drop_deserialize_derive(&mut item.attrs)?;
        plans.push(ObjectPlan { name, fields });
    }
    Ok(plans)
}

/// The fields structs (in their private module) and the `Deserialize` impls of the planned objects.
pub(crate) fn object_tokens(
    plans: &[ObjectPlan],
    type_names: &[String],
) -> Result<TokenStream, CodegenError> {
    let mut fields_structs = TokenStream::new();
    let mut impls = TokenStream::new();
    for plan in plans {
        let fields_ident = plan.fields_ident();
        if type_names.contains(&fields_ident.to_string()) {
            return Err(CodegenError::Spec(format!(
                "the spec names a type {fields_ident}, which the decoder generator uses for {}",
                plan.name
            )));
        }
        let name = format_ident!("{}", plan.name);
        let name_text = &plan.name;
        let idents: Vec<&syn::Ident> = plan.fields.iter().map(|field| &field.ident).collect();
        let types: Vec<&syn::Type> = plan.fields.iter().map(|field| &field.ty).collect();
        let keys: Vec<&String> = plan.fields.iter().map(|field| &field.key).collect();
        let indexes: Vec<usize> = (0..plan.fields.len()).collect();
        let finishes: Vec<TokenStream> = plan
            .fields
            .iter()
            .map(|field| {
                let ident = &field.ident;
                let key = &field.key;
                match &field.missing {
                    WhenMissing::Error => quote! {
                        self.#ident.ok_or_else(|| ::serde::de::Error::missing_field(#key))?
                    },
                    WhenMissing::None => quote!(self.#ident.unwrap_or(::std::option::Option::None)),
                    WhenMissing::Default => quote!(self.#ident.unwrap_or_default()),
                    WhenMissing::DefaultWith(path) => quote!(self.#ident.unwrap_or_else(#path)),
                }
            })
            .collect();
        let fields_path = plan.fields_path();
        fields_structs.extend(quote! {
            #[derive(Default)]
            pub(super) struct #fields_ident {
                #(#idents: ::std::option::Option<#types>,)*
                extra: ::serde_json::Map<::std::string::String, ::serde_json::Value>,
            }

            impl crate::decode::DecodeObject for #fields_ident {
                type Output = #name;
                const NAME: &'static str = #name_text;

                fn field_index(key: &str) -> ::std::option::Option<usize> {
                    match key {
                        #(#keys => ::std::option::Option::Some(#indexes),)*
                        _ => ::std::option::Option::None,
                    }
                }

                fn decode_field<'de, D: ::serde::Deserializer<'de>>(
                    &mut self,
                    index: usize,
                    deserializer: D,
                ) -> ::std::result::Result<(), D::Error> {
                    match index {
                        #(#indexes => crate::decode::set_once(&mut self.#idents, #keys, deserializer),)*
                        _ => ::std::result::Result::Ok(()),
                    }
                }

                fn extra(&mut self) -> &mut ::serde_json::Map<::std::string::String, ::serde_json::Value> {
                    &mut self.extra
                }

                fn finish<E: ::serde::de::Error>(self) -> ::std::result::Result<#name, E> {
                    ::std::result::Result::Ok(#name {
                        #(#idents: #finishes,)*
                        extra: self.extra,
                    })
                }
            }
        });
        impls.extend(quote! {
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                    deserializer.deserialize_map(crate::decode::ObjectVisitor::<#fields_path>::new())
                }
            }
        });
    }
    let module = format_ident!("{}", FIELDS_MODULE);
    Ok(quote! {
        #impls

        /// What each object has read so far while it is decoded, key by key (see `crate::decode`).
        mod #module {
            use super::*;

            #fields_structs
        }
    })
}

/// The JSON kind an untagged variant's type is read from.
enum JsonKind {
    String,
    Number,
    Array,
}

fn json_kind(ty: &syn::Type) -> Option<JsonKind> {
    let syn::Type::Path(path) = ty else {
        return None;
    };
    let last = path.path.segments.last()?;
    let first = path.path.segments.first()?;
    match (
        first.ident.to_string().as_str(),
        last.ident.to_string().as_str(),
    ) {
        ("std", "String") => Some(JsonKind::String),
        ("serde_json", "Number") => Some(JsonKind::Number),
        ("std", "Vec") => Some(JsonKind::Array),
        _ => None,
    }
}

/// For each untagged enum of `types` whose variants are a string, a number or a list (at most one
/// of each), replaces the derived `Deserialize` (which buffers the value and tries each variant in
/// turn) with one that picks the variant from the token it meets.
pub(crate) fn plain_kind_unions(items: &mut [syn::Item]) -> Result<TokenStream, CodegenError> {
    let mut impls = TokenStream::new();
    for item in items.iter_mut() {
        let syn::Item::Enum(item) = item else {
            continue;
        };
        let untagged = item.attrs.iter().any(|attr| {
            attr.path().is_ident("serde")
                && attr
                    .parse_args::<syn::Ident>()
                    .is_ok_and(|ident| ident == "untagged")
        });
        if !untagged {
            continue;
        }
        let mut string = None;
        let mut number = None;
        let mut array = None;
        let mut plain = true;
        for variant in &item.variants {
            let syn::Fields::Unnamed(fields) = &variant.fields else {
                plain = false;
                break;
            };
            let Some(field) = fields.unnamed.first().filter(|_| fields.unnamed.len() == 1) else {
                plain = false;
                break;
            };
            let slot = match json_kind(&field.ty) {
                Some(JsonKind::String) => &mut string,
                Some(JsonKind::Number) => &mut number,
                Some(JsonKind::Array) => &mut array,
                None => {
                    plain = false;
                    break;
                }
            };
            if slot.replace(variant.ident.clone()).is_some() {
                plain = false;
                break;
            }
        }
        if !plain {
            continue;
        }
        drop_deserialize_derive(&mut item.attrs)?;
        let name = &item.ident;
        let mut expecting = Vec::new();
        let mut visits = TokenStream::new();
        if let Some(variant) = &string {
            expecting.push("a string");
            visits.extend(quote! {
                fn visit_str<E: ::serde::de::Error>(self, value: &str) -> ::std::result::Result<#name, E> {
                    ::std::result::Result::Ok(#name::#variant(value.to_owned()))
                }
                fn visit_string<E: ::serde::de::Error>(self, value: ::std::string::String) -> ::std::result::Result<#name, E> {
                    ::std::result::Result::Ok(#name::#variant(value))
                }
            });
        }
        if let Some(variant) = &number {
            expecting.push("a number");
            visits.extend(quote! {
                fn visit_u64<E: ::serde::de::Error>(self, value: u64) -> ::std::result::Result<#name, E> {
                    ::std::result::Result::Ok(#name::#variant(value.into()))
                }
                fn visit_i64<E: ::serde::de::Error>(self, value: i64) -> ::std::result::Result<#name, E> {
                    ::std::result::Result::Ok(#name::#variant(value.into()))
                }
                fn visit_f64<E: ::serde::de::Error>(self, value: f64) -> ::std::result::Result<#name, E> {
                    ::serde_json::Number::from_f64(value)
                        .map(#name::#variant)
                        .ok_or_else(|| E::invalid_value(::serde::de::Unexpected::Float(value), &self))
                }
            });
        }
        if let Some(variant) = &array {
            expecting.push("a list");
            visits.extend(quote! {
                fn visit_seq<A: ::serde::de::SeqAccess<'de>>(self, seq: A) -> ::std::result::Result<#name, A::Error> {
                    ::serde::Deserialize::deserialize(::serde::de::value::SeqAccessDeserializer::new(seq))
                        .map(#name::#variant)
                }
            });
        }
        let expecting = expecting.join(" or ");
        impls.extend(quote! {
            impl<'de> ::serde::Deserialize<'de> for #name {
                fn deserialize<D: ::serde::Deserializer<'de>>(deserializer: D) -> ::std::result::Result<Self, D::Error> {
                    struct Visitor;
                    impl<'de> ::serde::de::Visitor<'de> for Visitor {
                        type Value = #name;
                        fn expecting(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                            f.write_str(#expecting)
                        }
                        #visits
                    }
                    deserializer.deserialize_any(Visitor)
                }
            }
        });
    }
    Ok(impls)
}

/// The arms of an open union's `decode_kind`: each known kind is decoded by its variant's fields struct.
pub(crate) fn union_arms(
    union: &str,
    kinds: &[&String],
    variants: &[syn::Ident],
    targets: &[String],
    plans: &[ObjectPlan],
) -> Result<TokenStream, CodegenError> {
    let mut arms = TokenStream::new();
    for ((kind, variant), target) in kinds.iter().zip(variants).zip(targets) {
        let plan = plans
            .iter()
            .find(|plan| &plan.name == target)
            .ok_or_else(|| {
                CodegenError::Spec(format!(
                    "{target}, a kind of {union}, must be an object that keeps unknown keys"
                ))
            })?;
        let fields_path = plan.fields_path();
        arms.extend(quote! {
            #kind => crate::decode::decode_variant::<#fields_path, A>(pending, map).map(Self::#variant),
        });
    }
    Ok(arms)
}

/// Moves `schemars::JsonSchema` out of every derive of `items` into
/// `#[cfg_attr(feature = "schemars", derive(::schemars::JsonSchema))]`: JSON Schema support is an
/// opt-in feature, so that a default build does not compile schemars and its derive macro.
pub(crate) fn gate_json_schema(items: &mut [syn::Item]) -> Result<(), CodegenError> {
    for item in items.iter_mut() {
        let attrs = match item {
            syn::Item::Struct(item) => &mut item.attrs,
            syn::Item::Enum(item) => &mut item.attrs,
            _ => continue,
        };
        let mut gated = false;
        for attr in attrs
            .iter_mut()
            .filter(|attr| attr.path().is_ident("derive"))
        {
            let paths = attr
                .parse_args_with(Punctuated::<syn::Path, syn::Token![,]>::parse_terminated)
                .map_err(CodegenError::Syntax)?;
            let is_schema = |path: &syn::Path| {
                path.segments
                    .last()
                    .is_some_and(|segment| segment.ident == "JsonSchema")
            };
            if paths.iter().any(is_schema) {
                gated = true;
                let kept: Vec<&syn::Path> = paths.iter().filter(|path| !is_schema(path)).collect();
                *attr = syn::parse_quote!(#[derive(#(#kept),*)]);
            }
        }
        if gated {
            attrs.push(syn::parse_quote!(
                #[cfg_attr(feature = "schemars", derive(::schemars::JsonSchema))]
            ));
        }
    }
    Ok(())
}
