//! Post-processing of progenitor's httpmock helpers, where their output does not match what the API sends.
//!
//! progenitor 0.15.1 generates the helpers for `inkeep-analytics-mock`, with two shortcomings this
//! module corrects from the spec, so that the corrections follow the spec as it grows:
//! - a response whose media type is not `application/json` (the `application/problem+json`
//!   errors, the `text/csv` exports) gets an untyped `serde_json::Value` sent as
//!   `application/json`; here a JSON media type gets its schema's type and its own
//!   `content-type`, and any other media type gets raw bytes;
//! - a path parameter is put into a regex as is, so `a.b` also matches `aXb`, `a(b` panics, and
//!   an id the client percent-encodes never matches; here it is percent-encoded as the client
//!   does and then regex-escaped.
//!
//! It also names every helper (and its `When` and `Then`) after the SDK's `Client` method for the
//! operation (`list_conversations`, not progenitor's `get_all_conversation`), gives the `When` of a
//! write whose body has an `id` a `body_ignoring_id` matcher (the SDK adds an `id` to a write sent
//! without one), and documents every generated helper with the operation it mocks.
//! Anything it expects and does not find is an error, so a generator bump cannot silently undo it.

use std::collections::BTreeMap;

use heck::{ToSnakeCase, ToUpperCamelCase};
use openapiv3::{OpenAPI, Operation, ReferenceOr, Response, Schema, SchemaKind, Type};
use proc_macro2::{Delimiter, Group, TokenStream, TokenTree};
use quote::{ToTokens, format_ident};

use super::{CodegenError, client_method_name};

/// Applies every correction to the file progenitor's `Generator::httpmock` produced.
pub(super) fn fix(spec: &OpenAPI, file: &mut syn::File) -> Result<(), CodegenError> {
    let mut renames = BTreeMap::new();
    for (path, method, operation) in operations(spec)? {
        let id = operation
            .operation_id
            .as_deref()
            .ok_or_else(|| CodegenError::Spec(format!("{method} {path} has no operationId")))?;
        let summary = format!("`{} {path}` (`{id}`)", method.to_uppercase());
        let when_name = format!("{id}-when").to_upper_camel_case();
        let then_name = format!("{id}-then").to_upper_camel_case();

        let operations = operations_module(file)?;
        document_struct(
            operations,
            &when_name,
            &format!(" The request matchers of {summary}."),
        )?;
        document_struct(
            operations,
            &then_name,
            &format!(" The responses of {summary}, one method per status the spec lists."),
        )?;

        let when = impl_of(operations, &when_name)?;
        for parameter in path_parameters(spec, path, operation)? {
            escape_path_parameter(when, &when_name, &parameter)?;
        }

        if body_has_top_level_id(spec, operation)? {
            add_body_ignoring_id(when, &when_name)?;
        }

        let then = impl_of(operations, &then_name)?;
        for (status, response) in &operation.responses.responses {
            let openapiv3::StatusCode::Code(status) = status else {
                continue;
            };
            let response = resolve_response(spec, response)?;
            type_response(then, &then_name, *status, response)?;
        }

        document_trait_method(
            file,
            &id.to_snake_case(),
            &format!(
                " Mocks {summary}: `config_fn` gets its typed request matchers and responses."
            ),
        )?;

        let helper = client_method_name(id);
        if helper != id.to_snake_case() {
            renames.insert(id.to_snake_case(), helper.clone());
            renames.insert(when_name, format!("{helper}-when").to_upper_camel_case());
            renames.insert(then_name, format!("{helper}-then").to_upper_camel_case());
        }
    }
    if !renames.is_empty() {
        let tokens = rename_idents(file.to_token_stream(), &renames);
        *file = syn::parse2(tokens).map_err(CodegenError::Syntax)?;
    }
    Ok(())
}

/// Renames every identifier of `tokens` that `renames` lists.
fn rename_idents(tokens: TokenStream, renames: &BTreeMap<String, String>) -> TokenStream {
    tokens
        .into_iter()
        .map(|token| match token {
            TokenTree::Ident(ident) => match renames.get(&ident.to_string()) {
                Some(name) => TokenTree::Ident(proc_macro2::Ident::new(name, ident.span())),
                None => TokenTree::Ident(ident),
            },
            TokenTree::Group(group) => {
                let mut renamed =
                    Group::new(group.delimiter(), rename_idents(group.stream(), renames));
                renamed.set_span(group.span());
                TokenTree::Group(renamed)
            }
            other => other,
        })
        .collect()
}

/// Whether the JSON request body of `operation` has a top-level `id` (in any variant of a union),
/// which the SDK fills in when a write is sent without one.
fn body_has_top_level_id(spec: &OpenAPI, operation: &Operation) -> Result<bool, CodegenError> {
    let Some(body) = &operation.request_body else {
        return Ok(false);
    };
    let ReferenceOr::Item(body) = body else {
        return Err(CodegenError::Spec(
            "a request body is a reference; inline it".into(),
        ));
    };
    let Some(schema) = body
        .content
        .get("application/json")
        .and_then(|content| content.schema.as_ref())
    else {
        return Ok(false);
    };
    has_property(spec, schema, "id", 0)
}

fn has_property(
    spec: &OpenAPI,
    schema: &ReferenceOr<Schema>,
    name: &str,
    depth: usize,
) -> Result<bool, CodegenError> {
    if depth > 8 {
        return Err(CodegenError::Spec(
            "a request body's unions nest without end".into(),
        ));
    }
    let schema = match schema {
        ReferenceOr::Item(schema) => schema,
        ReferenceOr::Reference { reference } => {
            let component = reference
                .strip_prefix("#/components/schemas/")
                .and_then(|key| spec.components.as_ref()?.schemas.get(key));
            match component {
                Some(ReferenceOr::Item(schema)) => schema,
                _ => {
                    return Err(CodegenError::Spec(format!(
                        "{reference} is missing or a reference"
                    )));
                }
            }
        }
    };
    match &schema.schema_kind {
        SchemaKind::Type(Type::Object(object)) => Ok(object.properties.contains_key(name)),
        SchemaKind::OneOf { one_of: variants }
        | SchemaKind::AnyOf { any_of: variants }
        | SchemaKind::AllOf { all_of: variants } => {
            for variant in variants {
                if has_property(spec, variant, name, depth + 1)? {
                    return Ok(true);
                }
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Adds `body_ignoring_id`, typed like the generated `body`, to the `When` of a write.
fn add_body_ignoring_id(when: &mut syn::ItemImpl, when_name: &str) -> Result<(), CodegenError> {
    let body = methods(when)
        .find(|method| method.sig.ident == "body")
        .ok_or_else(|| unexpected(&format!("{when_name} has no method body")))?;
    let mut sig = body.sig.clone();
    sig.ident = format_ident!("body_ignoring_id");
    let method: syn::ImplItemFn = syn::parse_quote! {
        /// Matches a JSON body equal to `value` but for the top-level `id` of either, which the SDK
        /// gives a write sent without one; see [`crate::json_body_ignoring_id`].
        pub #sig {
            Self(crate::json_body_ignoring_id(self.0, value))
        }
    };
    when.items.push(syn::ImplItem::Fn(method));
    Ok(())
}

/// Every operation of the spec, with its path and method, in the spec's order.
fn operations(spec: &OpenAPI) -> Result<Vec<(&str, &str, &Operation)>, CodegenError> {
    let mut operations = Vec::new();
    for (path, item) in &spec.paths.paths {
        let ReferenceOr::Item(item) = item else {
            return Err(CodegenError::Spec(format!("path {path} is a reference")));
        };
        for (method, operation) in item.iter() {
            operations.push((path.as_str(), method, operation));
        }
    }
    Ok(operations)
}

/// The names of the path parameters of an operation, as the spec spells them.
fn path_parameters(
    spec: &OpenAPI,
    path: &str,
    operation: &Operation,
) -> Result<Vec<String>, CodegenError> {
    let mut names = Vec::new();
    let ReferenceOr::Item(item) = &spec.paths.paths[path] else {
        return Err(CodegenError::Spec(format!("path {path} is a reference")));
    };
    for parameter in item.parameters.iter().chain(&operation.parameters) {
        let ReferenceOr::Item(parameter) = parameter else {
            return Err(CodegenError::Spec(format!(
                "a parameter of {path} is a reference; inline it"
            )));
        };
        if let openapiv3::Parameter::Path { parameter_data, .. } = parameter {
            names.push(parameter_data.name.clone());
        }
    }
    Ok(names)
}

fn resolve_response<'a>(
    spec: &'a OpenAPI,
    response: &'a ReferenceOr<Response>,
) -> Result<&'a Response, CodegenError> {
    match response {
        ReferenceOr::Item(response) => Ok(response),
        ReferenceOr::Reference { reference } => {
            let name = reference
                .strip_prefix("#/components/responses/")
                .ok_or_else(|| {
                    CodegenError::Spec(format!("response {reference} is not a component"))
                })?;
            match spec
                .components
                .as_ref()
                .and_then(|components| components.responses.get(name))
            {
                Some(ReferenceOr::Item(response)) => Ok(response),
                _ => Err(CodegenError::Spec(format!(
                    "response {reference} is missing or a reference"
                ))),
            }
        }
    }
}

fn operations_module(file: &mut syn::File) -> Result<&mut Vec<syn::Item>, CodegenError> {
    file.items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Mod(module) if module.ident == "operations" => {
                module.content.as_mut().map(|(_, items)| items)
            }
            _ => None,
        })
        .ok_or_else(|| unexpected("progenitor emitted no `operations` module"))
}

fn document_struct(items: &mut [syn::Item], name: &str, doc: &str) -> Result<(), CodegenError> {
    let item = items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Struct(item) if item.ident == name => Some(item),
            _ => None,
        })
        .ok_or_else(|| unexpected(&format!("progenitor emitted no struct {name}")))?;
    item.attrs.insert(0, syn::parse_quote!(#[doc = #doc]));
    Ok(())
}

fn impl_of<'a>(
    items: &'a mut [syn::Item],
    name: &str,
) -> Result<&'a mut syn::ItemImpl, CodegenError> {
    items
        .iter_mut()
        .find_map(|item| match item {
            syn::Item::Impl(item) if item.trait_.is_none() && is_named(&item.self_ty, name) => {
                Some(item)
            }
            _ => None,
        })
        .ok_or_else(|| unexpected(&format!("progenitor emitted no impl of {name}")))
}

fn is_named(ty: &syn::Type, name: &str) -> bool {
    matches!(ty, syn::Type::Path(path) if path.qself.is_none() && path.path.is_ident(name))
}

fn methods(item: &mut syn::ItemImpl) -> impl Iterator<Item = &mut syn::ImplItemFn> {
    item.items.iter_mut().filter_map(|item| match item {
        syn::ImplItem::Fn(method) => Some(method),
        _ => None,
    })
}

/// Percent-encodes the value of a path parameter as the client does, then escapes it for the regex.
fn escape_path_parameter(
    when: &mut syn::ItemImpl,
    when_name: &str,
    parameter: &str,
) -> Result<(), CodegenError> {
    let method_name = parameter.to_snake_case();
    let method = methods(when)
        .find(|method| method.sig.ident == method_name)
        .ok_or_else(|| unexpected(&format!("{when_name} has no method {method_name}")))?;
    let pattern = find_format_literal(method.block.to_token_stream()).ok_or_else(|| {
        unexpected(&format!(
            "{when_name}::{method_name} builds no regex with `format!`"
        ))
    })?;
    let pattern = syn::LitStr::new(&pattern, proc_macro2::Span::call_site());
    method.block = syn::parse_quote!({
        let value = ::regex::escape(&::progenitor_client::encode_path(&value.to_string()));
        // Escaped, the value makes a valid regex whatever it is, so this cannot panic.
        let re = ::regex::Regex::new(&format!(#pattern, value)).unwrap();
        Self(self.0.path_matches(re))
    });
    Ok(())
}

/// The string literal of the first `format!(..)` in `tokens`.
fn find_format_literal(tokens: TokenStream) -> Option<String> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (index, token) in tokens.iter().enumerate() {
        if let (TokenTree::Ident(ident), Some(TokenTree::Punct(bang)), Some(TokenTree::Group(args))) =
            (token, tokens.get(index + 1), tokens.get(index + 2))
            && ident == "format"
            && bang.as_char() == '!'
            && args.delimiter() == Delimiter::Parenthesis
            && let Some(TokenTree::Literal(literal)) = args.stream().into_iter().next()
            && let Ok(literal) = syn::parse2::<syn::LitStr>(literal.into_token_stream())
        {
            return Some(literal.value());
        }
        if let TokenTree::Group(group) = token
            && let Some(found) = find_format_literal(group.stream())
        {
            return Some(found);
        }
    }
    None
}

/// Gives the response method for `status` the type and media type the spec lists, when that is not
/// `application/json` (which progenitor already types).
fn type_response(
    then: &mut syn::ItemImpl,
    then_name: &str,
    status: u16,
    response: &Response,
) -> Result<(), CodegenError> {
    let Some((media_type, content)) = response.content.iter().next() else {
        return Ok(());
    };
    if media_type == "application/json" {
        return Ok(());
    }
    let method = methods(then)
        .find(|method| status_of(method.block.to_token_stream()) == Some(status))
        .ok_or_else(|| unexpected(&format!("{then_name} has no method for status {status}")))?;
    let name = method.sig.ident.clone();
    let attrs = method.attrs.clone();
    let is_json = media_type.starts_with("application/json") || media_type.ends_with("+json");
    let schema = match &content.schema {
        Some(ReferenceOr::Reference { reference }) => reference
            .strip_prefix("#/components/schemas/")
            .map(|name| format_ident!("{}", name.to_upper_camel_case())),
        _ => None,
    };
    let replacement: syn::ImplItemFn = match (is_json, schema) {
        (true, Some(schema)) => {
            let doc = format!(" Answers {status} with this `{media_type}` body.");
            syn::parse_quote! {
                #(#attrs)*
                #[doc = #doc]
                pub fn #name(self, value: &types::#schema) -> Self {
                    Self(self.0.status(#status).header("content-type", #media_type).json_body_obj(value))
                }
            }
        }
        (true, None) => {
            let doc = format!(" Answers {status} with this `{media_type}` body.");
            syn::parse_quote! {
                #(#attrs)*
                #[doc = #doc]
                pub fn #name(self, value: ::serde_json::Value) -> Self {
                    Self(self.0.status(#status).header("content-type", #media_type).json_body(value))
                }
            }
        }
        (false, _) => {
            let doc = format!(" Answers {status} with these bytes as a `{media_type}` body.");
            syn::parse_quote! {
                #(#attrs)*
                #[doc = #doc]
                pub fn #name(self, value: impl ::std::convert::AsRef<[u8]>) -> Self {
                    Self(self.0.status(#status).header("content-type", #media_type).body(value))
                }
            }
        }
    };
    *method = replacement;
    Ok(())
}

/// The status code a generated response method sets, from its `.status(NNNu16)` call.
fn status_of(tokens: TokenStream) -> Option<u16> {
    let tokens: Vec<TokenTree> = tokens.into_iter().collect();
    for (index, token) in tokens.iter().enumerate() {
        if let (TokenTree::Ident(ident), Some(TokenTree::Group(args))) =
            (token, tokens.get(index + 1))
            && ident == "status"
            && args.delimiter() == Delimiter::Parenthesis
            && let Ok(literal) = syn::parse2::<syn::LitInt>(args.stream())
            && let Ok(status) = literal.base10_parse::<u16>()
        {
            return Some(status);
        }
        if let TokenTree::Group(group) = token
            && let Some(found) = status_of(group.stream())
        {
            return Some(found);
        }
    }
    None
}

/// Documents the method `name` of `MockServerExt`, in the trait and in its impl for `MockServer`.
fn document_trait_method(file: &mut syn::File, name: &str, doc: &str) -> Result<(), CodegenError> {
    let mut documented = 0;
    for item in &mut file.items {
        match item {
            syn::Item::Trait(item) if item.ident == "MockServerExt" => {
                for method in &mut item.items {
                    if let syn::TraitItem::Fn(method) = method
                        && method.sig.ident == name
                    {
                        method.attrs.insert(0, syn::parse_quote!(#[doc = #doc]));
                        documented += 1;
                    }
                }
            }
            syn::Item::Impl(item) if item.trait_.is_some() => {
                for method in methods(item) {
                    if method.sig.ident == name {
                        method.attrs.insert(0, syn::parse_quote!(#[doc = #doc]));
                        documented += 1;
                    }
                }
            }
            _ => {}
        }
    }
    if documented == 2 {
        Ok(())
    } else {
        Err(unexpected(&format!(
            "MockServerExt::{name} is not in both the trait and its impl"
        )))
    }
}

fn unexpected(what: &str) -> CodegenError {
    CodegenError::Spec(format!(
        "the httpmock helpers are not shaped as expected: {what}"
    ))
}
