//! The process-wide engine, its epoch ticker and the compiled-component cache.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use wasmtime::component::{Component, HasSelf, Linker};
use wasmtime::{Config, Engine};

use super::bindings::{Handler, HandlerPre};
use super::instance::{HandlerInstance, Host, InstanceSetup};
use super::HostError;

/// How often the epoch advances: the granularity of [`Limits::call_time`](super::Limits).
pub const EPOCH_TICK: Duration = Duration::from_millis(10);

/// One per process: compiles handler components once per package and creates instances.
pub struct HandlerEngine {
    engine: Engine,
    linker: Linker<Host>,
    /// Templates by package SHA-256. Versions are few and immutable, so entries are never evicted.
    cache: Mutex<HashMap<[u8; 32], HandlerComponent>>,
    /// Where compiled components are kept across restarts (`<data-dir>/compiled`), if anywhere.
    compiled_dir: Option<PathBuf>,
}

/// A compiled, pre-linked handler component: the template instances are created from. Cheap to
/// clone.
#[derive(Clone)]
pub struct HandlerComponent {
    pre: HandlerPre<Host>,
}

impl HandlerEngine {
    /// Configures wasmtime, links the handler world and WASI, and starts the epoch ticker.
    /// With `compiled_dir` (the server uses `<data-dir>/compiled`), compiled components are
    /// written there and loaded from there after a restart instead of being compiled again.
    pub fn new(compiled_dir: Option<PathBuf>) -> Result<Self, HostError> {
        let engine_error = |e: wasmtime::Error| HostError::Engine(format!("{e:#}"));
        let mut config = Config::new();
        config.wasm_component_model(true);
        // Time limits by epoch rather than fuel: no per-instruction cost, and the granularity of
        // a tick is plenty for limits measured in seconds.
        config.epoch_interruption(true);
        let engine = Engine::new(&config).map_err(engine_error)?;

        let mut linker = Linker::new(&engine);
        Handler::add_to_linker::<Host, HasSelf<Host>>(&mut linker, |host| host)
            .map_err(engine_error)?;
        wasmtime_wasi::p2::add_to_linker_sync(&mut linker).map_err(engine_error)?;

        if let Some(dir) = &compiled_dir {
            fs::create_dir_all(dir)
                .map_err(|e| HostError::Engine(format!("cannot create {}: {e}", dir.display())))?;
        }
        start_ticker(&engine)?;
        Ok(HandlerEngine {
            engine,
            linker,
            cache: Mutex::new(HashMap::new()),
            compiled_dir,
        })
    }

    /// The compiled template of the package with this SHA-256, compiling `component` (the
    /// package's WebAssembly component) on first use. CPU-heavy on a miss: call it off the async
    /// workers.
    pub fn component(
        &self,
        package_sha256: [u8; 32],
        component: &[u8],
    ) -> Result<HandlerComponent, HostError> {
        if let Some(cached) = self.cached(&package_sha256) {
            return Ok(cached);
        }
        // Compiled outside the lock so that one slow compilation does not hold up the others;
        // two racing compilations of the same package waste work once, and the first one wins.
        let file = self
            .compiled_dir
            .as_ref()
            .map(|dir| dir.join(format!("{}.cwasm", hex(&package_sha256))));
        let compiled = match file.as_deref().and_then(|file| self.load(file)) {
            Some(compiled) => compiled,
            None => {
                let compiled = Component::new(&self.engine, component)
                    .map_err(|e| HostError::Component(format!("it does not compile: {e:#}")))?;
                if let Some(file) = &file {
                    store_compiled(&compiled, file)?;
                }
                compiled
            }
        };
        let pre = self
            .linker
            .instantiate_pre(&compiled)
            .and_then(HandlerPre::new)
            .map_err(|e| HostError::Component(format!("it does not link: {e:#}")))?;
        let mut cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        Ok(cache
            .entry(package_sha256)
            .or_insert(HandlerComponent { pre })
            .clone())
    }

    /// A new instance of `component`; the wasm instance itself is created by
    /// [`HandlerInstance::init`].
    pub fn instance(&self, component: &HandlerComponent, setup: InstanceSetup) -> HandlerInstance {
        HandlerInstance::new(self.engine.clone(), component.pre.clone(), setup)
    }

    /// The compiled component in `file`, if there is a usable one. Anything unusable (missing,
    /// written by another wasmtime version or configuration) is compiled again and overwritten.
    fn load(&self, file: &Path) -> Option<Component> {
        // Read into memory rather than mapped (`deserialize_file`): a mapped file that shrinks
        // under the process would crash it with SIGBUS.
        let bytes = fs::read(file).ok()?;
        // SAFETY: `deserialize` runs the machine code in the bytes, so they must come from
        // `Component::serialize`. Only `store_compiled` writes this directory, inside the data
        // directory that the server creates owner-only; whoever could write there could replace
        // the packages and the binary as well. Wasmtime itself rejects artifacts of another
        // version or engine configuration.
        unsafe { Component::deserialize(&self.engine, bytes) }.ok()
    }

    fn cached(&self, package_sha256: &[u8; 32]) -> Option<HandlerComponent> {
        let cache = self.cache.lock().unwrap_or_else(PoisonError::into_inner);
        cache.get(package_sha256).cloned()
    }
}

/// Writes a compiled component atomically (temporary file, then rename), so that a crash never
/// leaves a truncated artifact behind.
fn store_compiled(compiled: &Component, file: &Path) -> Result<(), HostError> {
    let failed = |e: &dyn std::fmt::Display| {
        HostError::Component(format!(
            "cannot store the compiled component {}: {e}",
            file.display()
        ))
    };
    let bytes = compiled.serialize().map_err(|e| failed(&e))?;
    let temporary = file.with_extension("cwasm.tmp");
    fs::write(&temporary, bytes).map_err(|e| failed(&e))?;
    fs::rename(&temporary, file).map_err(|e| failed(&e))
}

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(64), |mut text, byte| {
            // Writing to a String cannot fail.
            let _ = write!(text, "{byte:02x}");
            text
        })
}

/// Advances the epoch every [`EPOCH_TICK`] for as long as the engine lives, which includes
/// instances that outlive the [`HandlerEngine`] (they hold the engine too): their time limits keep
/// working.
fn start_ticker(engine: &Engine) -> Result<(), HostError> {
    let weak = engine.weak();
    thread::Builder::new()
        .name("mh-epoch-ticker".into())
        .spawn(move || loop {
            thread::sleep(EPOCH_TICK);
            match weak.upgrade() {
                Some(engine) => engine.increment_epoch(),
                None => break,
            }
        })
        .map(drop)
        .map_err(|e| HostError::Engine(format!("the epoch ticker thread cannot start: {e}")))
}

// The engine is shared by the runtime's threads; instances move between them.
const _: fn() = || {
    fn shared<T: Send + Sync>() {}
    fn movable<T: Send>() {}
    shared::<HandlerEngine>();
    movable::<HandlerInstance>();
};
