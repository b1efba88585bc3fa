//! The handler host against real components: guests written in WAT (core modules calling the
//! canonical ABI directly) and wrapped into components with `wit-component`, so no binaries are
//! checked in and nothing but this crate's dev-dependencies is needed to build them.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};
use std::thread;
use std::time::{Duration, Instant};

use mh_fabric::host::{
    FaultKind, HandlerComponent, HandlerEngine, HandlerFault, HandlerInstance, HostError,
    InstanceSetup, Limits, LogLevel, LogLine, MemoryState, Message,
};
use wit_component::{ComponentEncoder, StringEncoding};
use wit_parser::Resolve;

const HANDLER_WIT: &str = include_str!("../../../wit/handler.wit");

/// One guest with every behaviour; see the comment at the top of `guest.wat`.
const GUEST: &str = include_str!("guest.wat");

/// Wraps a core module into a component of `wit`'s `handler` world; `deps` are WIT packages the
/// world refers to, pushed first.
fn component(wat: &str, deps: &[&str], wit: &str) -> Vec<u8> {
    let mut module = wat::parse_str(wat).unwrap();
    let mut resolve = Resolve::default();
    for (i, dep) in deps.iter().enumerate() {
        resolve.push_str(format!("dep{i}.wit"), dep).unwrap();
    }
    let package = resolve.push_str("handler.wit", wit).unwrap();
    let world = resolve.select_world(&[package], Some("handler")).unwrap();
    wit_component::embed_component_metadata(&mut module, &resolve, world, StringEncoding::UTF8)
        .unwrap();
    ComponentEncoder::default()
        .module(&module)
        .unwrap()
        .validate(true)
        .encode()
        .unwrap()
}

/// The engine and the guest's template, shared by every test of this binary (as in a process).
fn guest() -> &'static (Arc<HandlerEngine>, HandlerComponent) {
    static GUEST_TEMPLATE: OnceLock<(Arc<HandlerEngine>, HandlerComponent)> = OnceLock::new();
    GUEST_TEMPLATE.get_or_init(|| {
        let engine = Arc::new(HandlerEngine::new(None).unwrap());
        let template = engine
            .component([1; 32], &component(GUEST, &[], HANDLER_WIT))
            .unwrap();
        (engine, template)
    })
}

fn limits() -> Limits {
    Limits {
        memory_bytes: 16 << 20,
        call_time: Duration::from_millis(300),
        outputs_per_batch: 10,
        ..Limits::default()
    }
}

fn instance(state: &MemoryState) -> HandlerInstance {
    let (engine, template) = guest();
    let mut instance = engine.instance(
        template,
        InstanceSetup {
            output_subjects: BTreeSet::from(["echo".to_string()]),
            variables: HashMap::from([("greeting".to_string(), "hello".to_string())]),
            state: Box::new(state.clone()),
            limits: limits(),
        },
    );
    let outcome = instance
        .init(vec![("Threshold".into(), "27".into())])
        .unwrap();
    assert_eq!(outcome.logs, vec![info("hello")]);
    instance
}

fn message(id: &str, body: &str) -> Message {
    Message {
        id: id.into(),
        subject: String::new(),
        properties: vec![("x-mh-type".into(), "Temperature".into())],
        content_type: "application/json".into(),
        body: body.as_bytes().to_vec(),
        partition_key: "sensor-1".into(),
    }
}

fn info(text: &str) -> LogLine {
    LogLine {
        level: LogLevel::Info,
        text: text.into(),
    }
}

fn fault_of(result: Result<impl std::fmt::Debug, HostError>) -> HandlerFault {
    match result {
        Err(HostError::Fault(fault)) => fault,
        other => panic!("expected a fault, got {other:?}"),
    }
}

fn count(state: &MemoryState) -> Option<u32> {
    let bytes = state.entries().get("count")?.clone();
    Some(u32::from_le_bytes(bytes.try_into().unwrap()))
}

/// Runs one echo batch and checks its outputs.
fn echo_batch(instance: &mut HandlerInstance, ids: &[&str]) {
    let batch = ids.iter().map(|id| message(id, "{}")).collect::<Vec<_>>();
    let outcome = instance.handle(&batch).unwrap();
    assert_eq!(outcome.outputs.len(), ids.len());
    for (output, id) in outcome.outputs.iter().zip(ids) {
        assert_eq!(output.subject, "echo", "{id}");
        assert_eq!(output.body, b"{}");
    }
    instance.complete().unwrap();
}

#[test]
fn echo_pushes_logs_and_stages_state_until_complete() {
    let state = MemoryState::default();
    let mut instance = instance(&state);

    let batch = [message("m1", r#"{"Amount":21}"#), message("m2", "{}")];
    let outcome = instance.handle(&batch).unwrap();
    assert_eq!(outcome.logs, vec![info("m1"), info("m2")]);
    let first = &outcome.outputs[0];
    assert_eq!(first.subject, "echo");
    assert_eq!(first.body, br#"{"Amount":21}"#);
    assert_eq!(first.content_type, "application/json");
    assert_eq!(first.partition_key, "sensor-1");
    assert_eq!(
        first.properties,
        vec![("x-mh-type".to_string(), "Temperature".to_string())]
    );
    assert_eq!(outcome.outputs.len(), 2);
    // Staged, not applied: the batch is not complete yet.
    assert_eq!(count(&state), None);

    let outcome = instance.complete().unwrap();
    assert_eq!(
        outcome.logs,
        vec![LogLine {
            level: LogLevel::Debug,
            text: "complete".into()
        }]
    );
    assert_eq!(count(&state), Some(2));

    // A tick outside a batch is its own unit of work.
    instance.tick(1_700_000_000_000).unwrap();
    assert_eq!(
        state.entries().get("last-tick").unwrap(),
        &1_700_000_000_000u64.to_le_bytes().to_vec()
    );
}

#[test]
fn a_trap_faults_the_batch_and_the_next_runs_on_a_fresh_instance() {
    let state = MemoryState::default();
    let mut instance = instance(&state);
    echo_batch(&mut instance, &["m1"]);

    // The first message is echoed (count staged at 2) before the second traps.
    let fault = fault_of(instance.handle(&[message("m2", "{}"), message("m3", "t")]));
    assert_eq!(fault.kind, FaultKind::Trap);
    assert!(
        fault.to_string().starts_with("handler fault (trap):"),
        "{fault}"
    );
    assert!(fault.message.contains("unreachable"), "{}", fault.message);
    assert_eq!(fault.logs, vec![info("m2")]);
    assert_eq!(count(&state), Some(1), "the failed batch left no state");

    // The retry instantiates again (init logs the greeting again) and works.
    let outcome = instance.handle(&[message("m2", "{}")]).unwrap();
    assert_eq!(outcome.logs, vec![info("hello"), info("m2")]);
    instance.complete().unwrap();
    assert_eq!(count(&state), Some(2));
}

#[test]
fn an_endless_loop_times_out_within_the_limit() {
    let state = MemoryState::default();
    let mut instance = instance(&state);
    let started = Instant::now();
    let fault = fault_of(instance.handle(&[message("m1", "loop")]));
    let elapsed = started.elapsed();
    assert_eq!(fault.kind, FaultKind::Timeout, "{fault}");
    assert!(fault.message.contains("300 ms"), "{}", fault.message);
    assert!(elapsed >= Duration::from_millis(300), "{elapsed:?}");
    assert!(elapsed < Duration::from_secs(2), "{elapsed:?}");
    echo_batch(&mut instance, &["m2"]);
}

#[test]
fn a_memory_hog_faults_at_the_memory_limit() {
    let state = MemoryState::default();
    let mut instance = instance(&state);
    let fault = fault_of(instance.handle(&[message("m1", "memory")]));
    assert_eq!(fault.kind, FaultKind::Memory, "{fault}");
    assert_eq!(
        fault.message,
        "the handler tried to grow its memory past its limit of 16777216 bytes"
    );
    echo_batch(&mut instance, &["m2"]);
}

#[test]
fn too_many_outputs_fault_even_when_the_guest_ignores_the_refusal() {
    let state = MemoryState::default();
    let mut instance = instance(&state);
    let fault = fault_of(instance.handle(&[message("m1", "outputs")]));
    assert_eq!(fault.kind, FaultKind::OutputLimit, "{fault}");
    assert!(
        fault.message.contains("more than 10 outputs"),
        "{}",
        fault.message
    );

    // The limit counts a whole batch, not one call: 10 fit, the 11th does not.
    let ids = (0..10).map(|i| format!("m{i}")).collect::<Vec<_>>();
    let ids = ids.iter().map(String::as_str).collect::<Vec<_>>();
    echo_batch(&mut instance, &ids);
    instance.handle(&[message("a", "{}")]).unwrap();
    let batch = (0..9).map(|_| message("b", "{}")).collect::<Vec<_>>();
    instance.handle(&batch).unwrap();
    let fault = fault_of(instance.handle(&[message("c", "{}")]));
    assert_eq!(fault.kind, FaultKind::OutputLimit, "{fault}");
}

#[test]
fn an_undeclared_subject_faults() {
    let state = MemoryState::default();
    let mut instance = instance(&state);
    let fault = fault_of(instance.handle(&[message("m1", "undeclared")]));
    assert_eq!(fault.kind, FaultKind::UndeclaredSubject, "{fault}");
    assert!(
        fault.message.contains(r#""undeclared""#) && fault.message.contains(r#"["echo"]"#),
        "{}",
        fault.message
    );
}

#[test]
fn a_guest_error_faults_with_its_message() {
    let state = MemoryState::default();
    let mut instance = instance(&state);
    let fault = fault_of(instance.handle(&[message("m1", "error")]));
    assert_eq!(fault.kind, FaultKind::Guest);
    assert_eq!(
        fault.to_string(),
        "handler fault (handler error): bad input"
    );
}

#[test]
fn calls_before_init_fault() {
    let (engine, template) = guest();
    let mut instance = engine.instance(
        template,
        InstanceSetup {
            output_subjects: BTreeSet::new(),
            variables: HashMap::new(),
            state: Box::new(MemoryState::default()),
            limits: limits(),
        },
    );
    let fault = fault_of(instance.handle(&[message("m1", "{}")]));
    assert_eq!(fault.kind, FaultKind::Instantiate);
}

#[test]
fn a_faulting_handler_does_not_affect_another_running_at_the_same_time() {
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let bad = {
        let stop = stop.clone();
        thread::spawn(move || {
            let mut instance = instance(&MemoryState::default());
            let mut faults = Vec::new();
            for body in ["loop", "memory", "t", "outputs"].iter().cycle() {
                if stop.load(std::sync::atomic::Ordering::Relaxed) {
                    break;
                }
                faults.push(fault_of(instance.handle(&[message("x", body)])).kind);
            }
            faults
        })
    };
    let state = MemoryState::default();
    let mut good = instance(&state);
    let started = Instant::now();
    let mut batches = 0;
    while started.elapsed() < Duration::from_millis(1500) {
        echo_batch(&mut good, &["a", "b"]);
        batches += 1;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let faults = bad.join().unwrap();
    assert!(faults.contains(&FaultKind::Timeout), "{faults:?}");
    assert!(faults.contains(&FaultKind::Memory), "{faults:?}");
    assert_eq!(count(&state), Some(batches * 2));
}

#[test]
fn wasi_imports_are_linked() {
    let random =
        "package wasi:random@0.2.0;\ninterface random {\n  get-random-u64: func() -> u64;\n}\n";
    let wit = HANDLER_WIT.replace(
        "world handler {",
        "world handler {\n    import wasi:random/random@0.2.0;",
    );
    let wat = GUEST
        .replace(
            "(memory (export \"memory\") 1)",
            "(import \"wasi:random/random@0.2.0\" \"get-random-u64\" (func $random (result i64)))\n  (memory (export \"memory\") 1)",
        )
        .replace(
            "(func (export \"init\") (param i32 i32) (result i32)",
            "(func (export \"init\") (param i32 i32) (result i32)\n    (drop (call $random))",
        );
    let (engine, _) = guest();
    let template = engine
        .component([2; 32], &component(&wat, &[random], &wit))
        .unwrap();
    let mut instance = engine.instance(
        &template,
        InstanceSetup {
            output_subjects: BTreeSet::from(["echo".to_string()]),
            variables: HashMap::new(),
            state: Box::new(MemoryState::default()),
            limits: limits(),
        },
    );
    instance.init(Vec::new()).unwrap();
    echo_batch(&mut instance, &["m1"]);
}

#[test]
fn components_are_compiled_once_per_package() {
    let (engine, _) = guest();
    // Same digest, different bytes: the cached template answers, nothing is compiled.
    engine.component([1; 32], b"not a component").unwrap();
    let error = engine.component([3; 32], b"not a component").err().unwrap();
    assert!(error.to_string().contains("does not compile"), "{error}");
}

#[test]
fn compiled_components_survive_a_restart_in_the_compiled_directory() {
    let dir = tempfile::tempdir().unwrap();
    let compiled = dir.path().join("compiled");
    let bytes = component(GUEST, &[], HANDLER_WIT);
    let first = HandlerEngine::new(Some(compiled.clone())).unwrap();
    first.component([4; 32], &bytes).unwrap();
    let file = compiled.join(format!("{}.cwasm", "04".repeat(32)));
    assert!(file.is_file());
    drop(first);

    // A new process finds the compiled code: the package bytes are not even looked at.
    let second = HandlerEngine::new(Some(compiled.clone())).unwrap();
    let template = second.component([4; 32], b"not a component").unwrap();
    let state = MemoryState::default();
    let mut instance = second.instance(
        &template,
        InstanceSetup {
            output_subjects: BTreeSet::from(["echo".to_string()]),
            variables: HashMap::new(),
            state: Box::new(state.clone()),
            limits: limits(),
        },
    );
    instance.init(Vec::new()).unwrap();
    echo_batch(&mut instance, &["m1"]);
    assert_eq!(count(&state), Some(1));

    // A damaged artifact is compiled again from the package.
    std::fs::write(&file, b"garbage").unwrap();
    let third = HandlerEngine::new(Some(compiled)).unwrap();
    assert!(third.component([4; 32], b"not a component").is_err());
    third.component([4; 32], &bytes).unwrap();
    assert_ne!(std::fs::read(&file).unwrap(), b"garbage");
}
