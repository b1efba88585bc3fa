//! The runtime: deployed channels and the runners of their handlers.
//!
//! A deployment of a channel in an environment starts one [`runner`] task per handler
//! configuration. Each runner reads the channel's stream from its own checkpoint (the consumer
//! name is the handler configuration's id), so handlers progress, fail and recover independently.
//! Deploying again replaces the runners (after they finish the batch at hand) and keeps the
//! checkpoints; a handler that was never deployed starts at the end of the stream, at the moment
//! of the deployment.

mod effects;
mod runner;
mod status;
mod wasm;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use mh_blobs::{BlobStore, Digest};
use mh_log::{ChannelJournal, Envelope, HandlerStates, Inboxes, LogEntry, MessageLog, StreamId};
use mh_package::{Manifest, Version};
use mh_store::{
    Channel, Environment, HandlerConfiguration, HandlerVersion, MetadataStore, ScopeType,
    VersionStatus,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use uuid::Uuid;

pub(crate) use effects::{json_path, Effects, Matcher, Output};
pub use status::{HandlerStatus, RunState};

use self::effects::Fault;
use self::runner::Runner;
use self::status::StatusCell;
use self::wasm::{DurableState, PendingWrites, WasmProcessor};
use crate::builtins::{self, Builtin, BuiltinKind, ForwardToEndpoint, GenerateAlert, Webhook};
use crate::configure;
use crate::error::{FabricError, Result};
use crate::host::{HandlerEngine, InstanceSetup, Limits};
use crate::trigger::Trigger;

/// What the fabric reads and writes. The embedded log implements the four log traits at once.
#[derive(Clone)]
pub struct FabricParts {
    pub store: Arc<dyn MetadataStore>,
    pub log: Arc<dyn MessageLog>,
    pub inboxes: Arc<dyn Inboxes>,
    pub journal: Arc<dyn ChannelJournal>,
    pub states: Arc<dyn HandlerStates>,
    pub blobs: Arc<dyn BlobStore>,
}

/// Tuning of the runtime.
#[derive(Debug, Clone)]
pub struct FabricConfig {
    /// Most messages a handler gets in one batch.
    pub batch_size: usize,
    /// Tries of a failing message before it is dead-lettered.
    pub max_attempts: u32,
    /// Pause after the first failed try; doubles after each further one.
    pub retry_backoff: Duration,
    /// Most handler hops a message may make; an output past it is dead-lettered.
    pub max_hops: u32,
    /// How often WebAssembly handlers get `tick`.
    pub tick_interval: Duration,
    /// Memory, time and output limits of each WebAssembly handler.
    pub limits: Limits,
    /// Where compiled components are kept across restarts.
    pub compiled_dir: Option<PathBuf>,
    /// What a stored package may unpack to.
    pub package_limits: mh_package::Limits,
    /// Longest a webhook request may take.
    pub webhook_timeout: Duration,
}

impl Default for FabricConfig {
    fn default() -> Self {
        FabricConfig {
            batch_size: 500,
            max_attempts: 3,
            retry_backoff: Duration::from_millis(100),
            max_hops: 16,
            tick_interval: Duration::from_secs(1),
            limits: Limits::default(),
            compiled_dir: None,
            package_limits: mh_package::Limits::default(),
            webhook_timeout: Duration::from_secs(10),
        }
    }
}

pub(crate) struct Shared {
    pub parts: FabricParts,
    pub config: FabricConfig,
    pub engine: HandlerEngine,
    pub http: reqwest::Client,
}

/// The runners of one deployment.
struct Running {
    stop: watch::Sender<bool>,
    tasks: Vec<JoinHandle<()>>,
    handlers: Vec<Uuid>,
}

/// The processing plane of one node.
pub struct Fabric {
    shared: Arc<Shared>,
    running: tokio::sync::Mutex<HashMap<StreamId, Running>>,
    /// By (environment, handler configuration).
    statuses: Mutex<HashMap<(Uuid, Uuid), Arc<StatusCell>>>,
}

pub(crate) fn now_ms() -> i64 {
    time::OffsetDateTime::now_utc().unix_timestamp_nanos() as i64 / 1_000_000
}

/// A stream position just before every message appended from now on: log ids are UUIDv7s whose
/// leading 48 bits are the millisecond they were assigned in, and the log never assigns an id
/// below the current millisecond.
fn position_now() -> Uuid {
    let ms = u128::from(u64::try_from(now_ms() - 1).unwrap_or(0));
    Uuid::from_u128((ms << 80) | ((1u128 << 80) - 1))
}

/// Which code a handler configuration runs.
pub(crate) enum Definition {
    Builtin(&'static Builtin),
    Package {
        manifest: Manifest,
        package_digest: String,
    },
}

impl Definition {
    /// The definition of a stored (accepted) version: its manifest as stored at upload.
    pub fn package(version: HandlerVersion) -> Result<Definition> {
        let manifest: Manifest = serde_json::from_str(&version.manifest).map_err(|e| {
            FabricError::internal(format!(
                "the stored manifest of {} {} is unreadable: {e}",
                version.definition_id, version.version
            ))
        })?;
        Ok(Definition::Package {
            manifest,
            package_digest: version.package_digest,
        })
    }

    pub fn manifest(&self) -> &Manifest {
        match self {
            Definition::Builtin(builtin) => &builtin.manifest,
            Definition::Package { manifest, .. } => manifest,
        }
    }

    pub fn builtin(&self) -> Option<&'static Builtin> {
        match self {
            Definition::Builtin(builtin) => Some(builtin),
            Definition::Package { .. } => None,
        }
    }
}

/// How a runner processes messages.
pub(crate) enum Processor {
    Wasm {
        wasm: Box<WasmProcessor>,
        pending: PendingWrites,
    },
    Alert(GenerateAlert),
    Forward(ForwardToEndpoint),
    Webhook(Webhook),
}

impl Processor {
    async fn init(&mut self) -> Result<(), Fault> {
        match self {
            Processor::Wasm { wasm, .. } => wasm.init().await.map(drop),
            _ => Ok(()),
        }
    }

    async fn handle(&mut self, batch: &[Envelope]) -> Result<Effects, Fault> {
        let mut effects = Effects::default();
        let outcome = match self {
            Processor::Wasm { wasm, .. } => return wasm.handle(batch).await,
            Processor::Alert(alert) => alert.handle(batch, &mut effects),
            Processor::Forward(forward) => forward.handle(batch, &mut effects).await,
            Processor::Webhook(webhook) => webhook.handle(batch, &mut effects).await,
        };
        match outcome {
            Ok(()) => Ok(effects),
            Err(message) => Err(Fault {
                message,
                logs: effects.logs,
            }),
        }
    }

    fn ticks(&self) -> bool {
        matches!(self, Processor::Wasm { .. })
    }

    async fn tick(&mut self, now_ms: u64) -> Result<Effects, Fault> {
        match self {
            Processor::Wasm { wasm, .. } => wasm.tick(now_ms).await,
            _ => Ok(Effects::default()),
        }
    }

    fn take_writes(&self) -> Vec<(String, Option<Vec<u8>>)> {
        match self {
            Processor::Wasm { pending, .. } => wasm::take_pending(pending),
            _ => Vec::new(),
        }
    }

    async fn rollback(&mut self) {
        if let Processor::Wasm { wasm, pending } = self {
            wasm::drop_pending(pending);
            wasm.reset().await;
        }
    }
}

impl Fabric {
    pub fn new(parts: FabricParts, config: FabricConfig) -> Result<Self> {
        let engine = HandlerEngine::new(config.compiled_dir.clone())
            .map_err(|e| FabricError::internal(e.to_string()))?;
        let http = reqwest::Client::builder()
            .timeout(config.webhook_timeout)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .map_err(|e| FabricError::internal(format!("cannot create the webhook client: {e}")))?;
        Ok(Fabric {
            shared: Arc::new(Shared {
                parts,
                config,
                engine,
                http,
            }),
            running: tokio::sync::Mutex::new(HashMap::new()),
            statuses: Mutex::new(HashMap::new()),
        })
    }

    pub(crate) fn parts(&self) -> &FabricParts {
        &self.shared.parts
    }

    fn statuses(&self) -> MutexGuard<'_, HashMap<(Uuid, Uuid), Arc<StatusCell>>> {
        // Inserts and removals only: a panic cannot leave the map inconsistent.
        self.statuses.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Starts every stored deployment (at boot). A deployment that cannot start is reported in
    /// its channel's log and the process log; the others start regardless.
    pub async fn start(&self) -> Result<()> {
        let store = &self.shared.parts.store;
        for deployment in store.deployments().await? {
            let channel = store.channel(deployment.channel_id).await?;
            let environment = store.environment(deployment.environment_id).await?;
            let (Some(channel), Some(environment)) = (channel, environment) else {
                continue;
            };
            if let Err(error) = self.deploy(&channel, &environment).await {
                tracing::error!(channel = %channel.id, environment = %environment.name, %error, "deployment could not start");
                self.runtime_log(
                    channel.id,
                    environment.id,
                    "error",
                    format!("the deployment could not start: {error}"),
                )
                .await;
            }
        }
        Ok(())
    }

    /// Starts, or restarts with the current configuration, the channel's handlers in the
    /// environment. Every handler is prepared (definitions, variables, compilation) before any
    /// running one is stopped, so a mistake leaves the running deployment as it was.
    pub async fn deploy(&self, channel: &Channel, environment: &Environment) -> Result<()> {
        let store = &self.shared.parts.store;
        let stream = StreamId::new(channel.id, environment.id);
        let configurations = store.handler_configurations_of(channel.id).await?;
        let variables = self
            .variables_for(channel.account_id, channel.id, environment.id)
            .await?;
        let mut runners = Vec::with_capacity(configurations.len());
        for configuration in &configurations {
            let runner = self
                .prepare(channel, environment, configuration, &variables)
                .await
                .map_err(|e| FabricError {
                    message: format!(
                        "handler {:?} cannot be deployed: {}",
                        configuration.name, e.message
                    ),
                    ..e
                })?;
            runners.push(runner);
        }
        let mut running = self.running.lock().await;
        if let Some(previous) = running.remove(&stream) {
            self.stop(previous, environment.id, false).await;
        }
        for runner in &mut runners {
            runner.position = match self
                .shared
                .parts
                .log
                .checkpoint(stream, &runner.consumer)
                .await?
            {
                Some(position) => Some(position),
                None => {
                    // Recorded now, so that a restart before the first batch still starts here.
                    let start = position_now();
                    self.shared
                        .parts
                        .states
                        .commit(stream, &runner.consumer, Some(start), Vec::new())
                        .await?;
                    Some(start)
                }
            };
        }
        store
            .upsert_deployment(&mh_store::Deployment {
                channel_id: channel.id,
                environment_id: environment.id,
                deployed_at: time::OffsetDateTime::now_utc(),
            })
            .await?;
        let (stop, stopped) = watch::channel(false);
        let mut handlers = Vec::with_capacity(runners.len());
        let mut tasks = Vec::with_capacity(runners.len());
        for runner in runners {
            handlers.push(runner.handler);
            self.statuses()
                .insert((environment.id, runner.handler), runner.status.clone());
            tasks.push(tokio::spawn(runner.run(stopped.clone())));
        }
        running.insert(
            stream,
            Running {
                stop,
                tasks,
                handlers,
            },
        );
        drop(running);
        self.runtime_log(
            channel.id,
            environment.id,
            "info",
            format!(
                "deployed with {} handler(s) in environment {}",
                configurations.len(),
                environment.name
            ),
        )
        .await;
        Ok(())
    }

    /// Stops the channel's handlers in the environment and removes the deployment. Answers
    /// whether it was deployed there.
    pub async fn undeploy(&self, channel: Uuid, environment: Uuid) -> Result<bool> {
        let stream = StreamId::new(channel, environment);
        let previous = self.running.lock().await.remove(&stream);
        let was_running = previous.is_some();
        if let Some(previous) = previous {
            self.stop(previous, environment, true).await;
        }
        let removed = self
            .shared
            .parts
            .store
            .delete_deployment(channel, environment)
            .await?;
        if removed || was_running {
            self.runtime_log(channel, environment, "info", "undeployed".to_string())
                .await;
        }
        Ok(removed || was_running)
    }

    /// A handler configuration was deleted from the store: restarts the channel's deployments
    /// without it and forgets its checkpoints and state.
    pub async fn handler_removed(&self, channel: &Channel, handler: Uuid) -> Result<()> {
        let store = &self.shared.parts.store;
        for deployment in store.deployments_of_channel(channel.id).await? {
            let stream = StreamId::new(channel.id, deployment.environment_id);
            if let Some(environment) = store.environment(deployment.environment_id).await? {
                self.deploy(channel, &environment).await?;
            }
            self.shared
                .parts
                .states
                .forget_consumer(stream, &handler.to_string())
                .await?;
            self.statuses()
                .remove(&(deployment.environment_id, handler));
        }
        Ok(())
    }

    /// The status of a handler configuration running in an environment; `None` when it is not
    /// running there.
    pub fn status(&self, environment: Uuid, handler: Uuid) -> Option<HandlerStatus> {
        self.statuses()
            .get(&(environment, handler))
            .map(|cell| cell.snapshot())
    }

    /// Stops every runner after its current batch (graceful shutdown).
    pub async fn shutdown(&self) {
        let all: Vec<(StreamId, Running)> = self.running.lock().await.drain().collect();
        for (stream, running) in all {
            self.stop(running, stream.environment, true).await;
        }
    }

    async fn stop(&self, running: Running, environment: Uuid, forget_status: bool) {
        // Receivers may all be gone already (tasks ended); nothing to tell them then.
        let _ = running.stop.send(true);
        for task in running.tasks {
            if let Err(error) = task.await {
                tracing::error!(%error, "a handler runner ended abnormally");
            }
        }
        if forget_status {
            let mut statuses = self.statuses();
            for handler in running.handlers {
                statuses.remove(&(environment, handler));
            }
        }
    }

    /// The variables a handler of `channel` in `environment` sees, by name: account scope,
    /// overridden by environment scope, overridden by channel scope.
    pub(crate) async fn variables_for(
        &self,
        account: Uuid,
        channel: Uuid,
        environment: Uuid,
    ) -> Result<BTreeMap<String, String>> {
        let all = self.shared.parts.store.variables_of(account).await?;
        let mut merged = BTreeMap::new();
        for (scope, id) in [
            (ScopeType::Account, account),
            (ScopeType::Environment, environment),
            (ScopeType::Channel, channel),
        ] {
            for variable in all
                .iter()
                .filter(|v| v.scope_type == scope && v.scope_id == id)
            {
                merged.insert(variable.name.clone(), variable.value.clone());
            }
        }
        Ok(merged)
    }

    /// The definition (and accepted version) a configuration refers to.
    pub(crate) async fn definition(&self, id: Uuid, version: &str) -> Result<Definition> {
        if let Some(builtin) = builtins::builtin(id) {
            return Ok(Definition::Builtin(builtin));
        }
        let key = version
            .parse::<Version>()
            .map_err(|e| FabricError::invalid("invalid_version", e.to_string()))?
            .sort_key();
        let stored = self
            .shared
            .parts
            .store
            .version(id, &key)
            .await?
            .ok_or_else(|| {
                FabricError::not_found(format!(
                    "version {version} of handler definition {id} does not exist"
                ))
            })?;
        if stored.status != VersionStatus::Accepted {
            return Err(FabricError::conflict(
                "version_not_accepted",
                format!(
                    "version {version} of handler definition {id} is {}; only accepted versions run",
                    stored.status.as_str()
                ),
            ));
        }
        Definition::package(stored)
    }

    async fn prepare(
        &self,
        channel: &Channel,
        environment: &Environment,
        configuration: &HandlerConfiguration,
        variables: &BTreeMap<String, String>,
    ) -> Result<Runner> {
        let definition = self
            .definition(configuration.definition_id, &configuration.version)
            .await?;
        let manifest = definition.manifest();
        let values = configure::resolve_values(
            manifest,
            definition.builtin(),
            &configuration.values,
            variables,
        )?;
        let stream = StreamId::new(channel.id, environment.id);
        let consumer = configuration.id.to_string();
        let matcher = || -> Result<Matcher> {
            let expression = values.get("Trigger").map_or("true", String::as_str);
            let trigger = Trigger::compile(expression)
                .map_err(|e| FabricError::invalid("invalid_trigger", e.to_string()))?;
            Ok(Matcher::new(
                trigger,
                channel.name.clone(),
                environment.name.clone(),
                variables.clone(),
            ))
        };
        let value = |name: &str| values.get(name).cloned().unwrap_or_default();
        let processor = match &definition {
            Definition::Builtin(builtin) => match builtin.kind {
                BuiltinKind::GenerateAlert => Processor::Alert(GenerateAlert {
                    matcher: matcher()?,
                    alert_type: value("AlertType"),
                    subject: values
                        .get("OutputSubject")
                        .cloned()
                        .unwrap_or_else(|| "Alert".to_string()),
                }),
                BuiltinKind::ForwardToEndpoint => Processor::Forward(ForwardToEndpoint {
                    matcher: matcher()?,
                    endpoint: configure::parse_id("Endpoint", &value("Endpoint"))?,
                    device: values.get("Device").filter(|d| !d.is_empty()).cloned(),
                    stream,
                    store: self.shared.parts.store.clone(),
                    authorized: None,
                }),
                BuiltinKind::Webhook => Processor::Webhook(Webhook {
                    matcher: matcher()?,
                    client: self.shared.http.clone(),
                    url: configure::parse_url(&value("Url"))?,
                    headers: match values.get("Headers").filter(|h| !h.is_empty()) {
                        Some(headers) => configure::parse_headers(headers)?,
                        None => Default::default(),
                    },
                    body: values.get("Body").filter(|b| !b.is_empty()).cloned(),
                }),
            },
            Definition::Package {
                manifest,
                package_digest,
            } => {
                let pending = PendingWrites::default();
                let component = self.component(package_digest).await?;
                let setup = InstanceSetup {
                    output_subjects: configure::output_subjects(manifest, &values),
                    variables: variables.clone().into_iter().collect(),
                    state: Box::new(DurableState::new(
                        self.shared.parts.states.clone(),
                        stream,
                        consumer.clone(),
                        pending.clone(),
                    )),
                    limits: self.shared.config.limits.clone(),
                };
                let instance = self.shared.engine.instance(&component, setup);
                Processor::Wasm {
                    wasm: Box::new(WasmProcessor::new(
                        instance,
                        values.clone().into_iter().collect(),
                    )),
                    pending,
                }
            }
        };
        let input_subjects = (!configuration.input_subjects.is_empty()).then(|| {
            configuration
                .input_subjects
                .iter()
                .cloned()
                .collect::<HashSet<String>>()
        });
        let status = self
            .statuses()
            .get(&(environment.id, configuration.id))
            .cloned()
            .unwrap_or_else(|| Arc::new(StatusCell::new()));
        Ok(Runner {
            shared: self.shared.clone(),
            stream,
            handler: configuration.id,
            consumer,
            input_subjects,
            routes: configuration.output_routes.clone(),
            processor,
            status,
            position: None,
            unsaved_since: None,
        })
    }

    /// The compiled component of a stored package (compiled once per package, then cached).
    async fn component(&self, package_digest: &str) -> Result<crate::host::HandlerComponent> {
        let digest: Digest = package_digest.parse().map_err(|_| {
            FabricError::internal(format!(
                "stored package digest {package_digest:?} is malformed"
            ))
        })?;
        let bytes = self.shared.parts.blobs.get(&digest).await?.ok_or_else(|| {
            FabricError::internal(format!(
                "package {package_digest} is missing from the blob store"
            ))
        })?;
        let shared = self.shared.clone();
        // Unpacking and compiling are CPU-bound (seconds for a large component on a miss).
        tokio::task::spawn_blocking(move || {
            let package =
                mh_package::read_package(&bytes, &shared.config.package_limits).map_err(|e| {
                    FabricError::internal(format!("stored package {digest} is unreadable: {e}"))
                })?;
            shared
                .engine
                .component(*digest.as_bytes(), &package.component)
                .map_err(|e| FabricError::internal(e.to_string()))
        })
        .await
        .map_err(|e| FabricError::internal(format!("compiling a handler failed: {e}")))?
    }

    async fn runtime_log(&self, channel: Uuid, environment: Uuid, level: &str, text: String) {
        let entry = LogEntry {
            id: Uuid::nil(),
            at: now_ms(),
            environment,
            handler: None,
            level: level.to_string(),
            text,
        };
        if let Err(error) = self
            .shared
            .parts
            .journal
            .append_logs(channel, vec![entry])
            .await
        {
            tracing::warn!(%channel, %error, "channel log unavailable");
        }
    }
}
