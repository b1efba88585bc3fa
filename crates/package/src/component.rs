//! Checking that a component implements the handler world (`wit/handler.wit`).
//!
//! The component is compiled with wasmtime (so what is accepted here can later be run), then its
//! type is compared with the world: every export of the world must be present with exactly the
//! world's signature, and every import must come from the handler package or WASI (what the
//! fabric will provide). The comparison is structural, on the rendered WIT-like text of each type,
//! which also gives readable messages.

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, Type};
use wasmtime::{Config, Engine, OptLevel};

use crate::error::PackageError;

/// The world's exports and their signatures (parameters, result), as [`render`] writes them.
const EXPORTS: [(&str, &str, &str); 4] = [
    (
        "init",
        "list<tuple<string, string>>",
        "result<_, string>",
    ),
    (
        "handle",
        "list<record { id: string, subject: string, properties: list<tuple<string, string>>, content-type: string, body: list<u8>, partition-key: string }>",
        "result<_, string>",
    ),
    ("tick", "u64", "result<_, string>"),
    ("complete", "", "result<_, string>"),
];

/// Import namespaces a handler may use.
const ALLOWED_IMPORTS: [&str; 2] = ["messagehandler:handler/", "wasi:"];

/// Compiles and checks components. Holds one engine; cheap to share behind an `Arc`.
pub struct Validator {
    engine: Engine,
}

impl Validator {
    pub fn new() -> Result<Self, PackageError> {
        let mut config = Config::new();
        // The compiled code is thrown away after the check: compile fast rather than well.
        config.cranelift_opt_level(OptLevel::None);
        let engine = Engine::new(&config).map_err(|e| PackageError::Engine(e.to_string()))?;
        Ok(Validator { engine })
    }

    /// Compiles `bytes` and checks it against the handler world. `path` names the component in
    /// messages. CPU-heavy: call it off the async workers.
    pub fn validate(&self, path: &str, bytes: &[u8]) -> Result<(), PackageError> {
        let invalid = |reason: String| PackageError::InvalidComponent {
            path: path.to_string(),
            reason,
        };
        let component = Component::new(&self.engine, bytes).map_err(|e| {
            // Parser errors embed multi-line dumps of bytes; one line reads better in JSON and logs.
            let cause = format!("{e:#}");
            let cause = cause.split_whitespace().collect::<Vec<_>>().join(" ");
            invalid(format!(
                "it does not compile as a WebAssembly component: {cause}"
            ))
        })?;
        let ty = component.component_type();

        for (name, _) in ty.imports(&self.engine) {
            if !ALLOWED_IMPORTS
                .iter()
                .any(|prefix| name.starts_with(prefix))
            {
                return Err(invalid(format!(
                    "it imports {name:?}, which the host does not provide (only messagehandler:handler and wasi interfaces)"
                )));
            }
        }
        for (name, params, result) in EXPORTS {
            let item = ty.get_export(&self.engine, name).ok_or_else(|| {
                invalid(format!(
                    "it does not export {name:?} of the messagehandler:handler world"
                ))
            })?;
            let ComponentItem::ComponentFunc(func) = item.ty else {
                return Err(invalid(format!("its export {name:?} is not a function")));
            };
            let (actual_params, actual_result) = signature(&func);
            if actual_params != params || actual_result != result {
                return Err(invalid(format!(
                    "its export {name:?} has the signature func({actual_params}) -> {actual_result}, the world requires func({params}) -> {result}"
                )));
            }
        }
        Ok(())
    }
}

fn signature(func: &ComponentFunc) -> (String, String) {
    let params = func
        .params()
        .map(|(_, ty)| render(&ty))
        .collect::<Vec<_>>()
        .join(", ");
    let results = func.results().map(|ty| render(&ty)).collect::<Vec<_>>();
    let result = if results.is_empty() {
        "()".to_string()
    } else {
        results.join(", ")
    };
    (params, result)
}

fn optional(ty: Option<Type>) -> String {
    ty.map_or_else(|| "_".to_string(), |ty| render(&ty))
}

/// A type in WIT-like text; records and enums are shown by structure (names are not part of
/// a component's type).
fn render(ty: &Type) -> String {
    match ty {
        Type::Bool => "bool".into(),
        Type::S8 => "s8".into(),
        Type::U8 => "u8".into(),
        Type::S16 => "s16".into(),
        Type::U16 => "u16".into(),
        Type::S32 => "s32".into(),
        Type::U32 => "u32".into(),
        Type::S64 => "s64".into(),
        Type::U64 => "u64".into(),
        Type::Float32 => "f32".into(),
        Type::Float64 => "f64".into(),
        Type::Char => "char".into(),
        Type::String => "string".into(),
        Type::List(list) => format!("list<{}>", render(&list.ty())),
        Type::Record(record) => {
            let fields = record
                .fields()
                .map(|field| format!("{}: {}", field.name, render(&field.ty)))
                .collect::<Vec<_>>()
                .join(", ");
            format!("record {{ {fields} }}")
        }
        Type::Tuple(tuple) => {
            let types = tuple.types().map(|t| render(&t)).collect::<Vec<_>>();
            format!("tuple<{}>", types.join(", "))
        }
        Type::Option(option) => format!("option<{}>", render(&option.ty())),
        Type::Result(result) => {
            format!(
                "result<{}, {}>",
                optional(result.ok()),
                optional(result.err())
            )
        }
        Type::Enum(enumeration) => {
            let names = enumeration.names().collect::<Vec<_>>();
            format!("enum {{ {} }}", names.join(", "))
        }
        Type::Variant(variant) => {
            let cases = variant
                .cases()
                .map(|case| match case.ty {
                    Some(ty) => format!("{}({})", case.name, render(&ty)),
                    None => case.name.to_string(),
                })
                .collect::<Vec<_>>();
            format!("variant {{ {} }}", cases.join(", "))
        }
        Type::Flags(flags) => {
            let names = flags.names().collect::<Vec<_>>();
            format!("flags {{ {} }}", names.join(", "))
        }
        // Resources, async types and the rest never appear in the handler world's exports.
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use wit_component::{ComponentEncoder, StringEncoding};
    use wit_parser::{LiftLowerAbi, ManglingAndAbi, Resolve};

    use super::*;
    use crate::HANDLER_WIT;

    /// A component whose core module does nothing but has the world's shape.
    fn component_for(wit: &str) -> Vec<u8> {
        let mut resolve = Resolve::default();
        let package = resolve.push_str("handler.wit", wit).unwrap();
        let world = resolve.select_world(&[package], None).unwrap();
        let mut module = wit_component::dummy_module(
            &resolve,
            world,
            ManglingAndAbi::Legacy(LiftLowerAbi::Sync),
        );
        wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
            .unwrap();
        ComponentEncoder::default()
            .module(&module)
            .unwrap()
            .validate(true)
            .encode()
            .unwrap()
    }

    fn error_of(bytes: &[u8]) -> String {
        Validator::new()
            .unwrap()
            .validate("handler.wasm", bytes)
            .unwrap_err()
            .to_string()
    }

    #[test]
    fn a_component_of_the_world_is_accepted() {
        let validator = Validator::new().unwrap();
        validator
            .validate("handler.wasm", &component_for(HANDLER_WIT))
            .unwrap();
    }

    #[test]
    fn missing_or_mistyped_exports_are_named() {
        let without_tick =
            HANDLER_WIT.replace("export tick: func(now: u64) -> result<_, string>;", "");
        let message = error_of(&component_for(&without_tick));
        assert!(message.contains("does not export \"tick\""), "{message}");

        let mistyped = HANDLER_WIT.replace(
            "export tick: func(now: u64) -> result<_, string>;",
            "export tick: func(now: u32) -> result<_, string>;",
        );
        let message = error_of(&component_for(&mistyped));
        assert!(
            message.contains("export \"tick\" has the signature func(u32) -> result<_, string>"),
            "{message}"
        );
    }

    #[test]
    fn foreign_imports_and_garbage_are_rejected() {
        let foreign = HANDLER_WIT.replace(
            "world handler {",
            "world handler {\n    import connect: func();",
        );
        let message = error_of(&component_for(&foreign));
        assert!(message.contains("the host does not provide"), "{message}");
        let message = error_of(b"\0asm\x01\0\0\0");
        assert!(
            message.contains("does not compile as a WebAssembly component"),
            "{message}"
        );
    }
}
