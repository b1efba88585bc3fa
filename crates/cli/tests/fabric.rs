//! Issue 5 over real HTTP: deployed channels run their handlers. The temperature monitor end to
//! end with the average-in-period example, faulty WebAssembly handlers that fault only
//! themselves, restarts that resume from checkpoints, input subjects, output routes, the hop
//! limit, variables in templates and the webhook.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{assert_error, build_example, eventually, guest_package, Answer, Credentials, Server};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");
const TEXT: (&str, &str) = ("content-type", "text/plain");

/// Small limits so that faults show quickly.
const FAST_FAULTS: &[&str] = &[
    "--review",
    "auto",
    "--handler-attempts",
    "2",
    "--handler-retry-backoff-ms",
    "10",
    "--handler-time-limit-ms",
    "300",
    "--handler-memory-mib",
    "16",
    "--max-hops",
    "4",
];

/// One account talking to one server.
struct Client<'s> {
    server: &'s Server,
    bearer: String,
}

impl<'s> Client<'s> {
    async fn new(server: &'s Server, name: &str, flags: &[&str]) -> Client<'s> {
        Client::login(server, &server.create_account(name, flags)).await
    }

    async fn login(server: &'s Server, credentials: &Credentials) -> Client<'s> {
        Client {
            server,
            bearer: server.bearer(credentials).await,
        }
    }

    async fn send(&self, method: &str, path: &str, body: Option<Value>) -> Answer {
        let auth = ("authorization", self.bearer.as_str());
        match body {
            Some(body) => {
                self.server
                    .request(method, path, &[auth, JSON], body.to_string())
                    .await
            }
            None => self.server.request(method, path, &[auth], "").await,
        }
    }

    async fn ok(&self, method: &str, path: &str, body: Option<Value>) -> Value {
        let answer = self.send(method, path, body).await;
        assert!(
            (200..300).contains(&answer.status),
            "{method} {path}: {} {}",
            answer.status,
            answer.body
        );
        answer.body
    }

    async fn channel(&self, name: &str) -> String {
        let body = self
            .ok("POST", "/channels", Some(json!({"name": name})))
            .await;
        body["identifier"].as_str().unwrap().to_string()
    }

    /// An endpoint with routes `(channel, direction)` in `local`; answers its id.
    async fn endpoint(&self, routes: &[(&str, &str)]) -> String {
        let routes: Vec<Value> = routes
            .iter()
            .map(|(channel, direction)| {
                json!({"channel": channel, "environment": "local", "direction": direction})
            })
            .collect();
        let body = self
            .ok(
                "POST",
                "/endpoints/assign",
                Some(json!({"name": "gate-{0}", "routes": routes})),
            )
            .await;
        body[0]["identifier"].as_str().unwrap().to_string()
    }

    /// Uploads `zip` as version 1.0.0 of a new definition; answers the definition id.
    async fn upload(&self, name: &str, zip: Vec<u8>) -> String {
        let id = self.server.create_definition(&self.bearer, name).await;
        let answer = self
            .server
            .request(
                "POST",
                &format!("/handlers/definitions/{id}/1.0.0/package"),
                &[
                    ("authorization", self.bearer.as_str()),
                    ("content-type", "application/zip"),
                ],
                zip,
            )
            .await;
        assert!(
            matches!(answer.status, 200 | 201),
            "{} {}",
            answer.status,
            answer.body
        );
        id
    }

    /// [`Client::upload`] on a server with `--review auto`, then activates the version.
    async fn upload_active(&self, name: &str, zip: Vec<u8>) -> String {
        let id = self.upload(name, zip).await;
        self.activate(&id).await;
        id
    }

    async fn activate(&self, definition: &str) {
        self.ok(
            "POST",
            &format!("/handlers/definitions/{definition}/activate"),
            Some(json!({"version": "1.0.0"})),
        )
        .await;
    }

    async fn add_handler(&self, channel: &str, request: Value) -> String {
        let body = self
            .ok(
                "POST",
                &format!("/channels/{channel}/handlers"),
                Some(request),
            )
            .await;
        body["handlerConfigurationId"].as_str().unwrap().to_string()
    }

    async fn deploy(&self, channel: &str) -> Value {
        self.ok(
            "POST",
            &format!("/channels/{channel}/deployments"),
            Some(json!({"environment": "local"})),
        )
        .await
    }

    /// Every message of the channel's stream so far (waits up to 1 s for a first one).
    async fn stream(&self, channel: &str) -> Vec<Value> {
        let mut messages: Vec<Value> = Vec::new();
        loop {
            let mut path = format!("/channels/{channel}/messages?max=1000");
            if let Some(last) = messages.last() {
                path.push_str(&format!("&after={}", last["id"].as_str().unwrap()));
            } else {
                path.push_str("&wait=1");
            }
            let page = self.ok("GET", &path, None).await["messages"]
                .as_array()
                .unwrap()
                .clone();
            if page.is_empty() {
                return messages;
            }
            messages.extend(page);
        }
    }

    async fn dead_letters(&self, channel: &str) -> Vec<Value> {
        self.ok("GET", &format!("/channels/{channel}/deadletters"), None)
            .await["deadLetters"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn logs(&self, channel: &str) -> Vec<Value> {
        self.ok("GET", &format!("/channels/{channel}/logs?max=1000"), None)
            .await["entries"]
            .as_array()
            .unwrap()
            .clone()
    }

    async fn local_handlers(&self) -> Vec<Value> {
        let environments = self.ok("GET", "/environments", None).await;
        let local = environments
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == "local")
            .unwrap()["identifier"]
            .as_str()
            .unwrap()
            .to_string();
        self.ok("GET", &format!("/environments/{local}/handlers"), None)
            .await
            .as_array()
            .unwrap()
            .clone()
    }
}

/// A device token for `device` on an open endpoint.
async fn device(server: &Server, endpoint: &str, device: &str) -> String {
    let answer = server
        .request(
            "POST",
            &format!("/devices/register/{endpoint}/{device}"),
            &[("accept", "application/json"), JSON],
            "",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    format!("Bearer {}", answer.body["access_token"].as_str().unwrap())
}

async fn ingest(
    server: &Server,
    endpoint: &str,
    token: &str,
    content_type: (&str, &str),
    body: &str,
) {
    let answer = server
        .request(
            "POST",
            &format!("/endpoints/{endpoint}/messages"),
            &[("authorization", token), content_type],
            body.to_string(),
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
}

/// Receives and completes up to `max` messages of the endpoint's inbox, waiting up to `wait`
/// seconds; answers their message views.
async fn take(server: &Server, endpoint: &str, token: &str, wait: u64) -> Vec<Value> {
    let answer = server
        .request(
            "GET",
            &format!("/endpoints/{endpoint}/messages?max=100&wait={wait}"),
            &[("authorization", token)],
            "",
        )
        .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let deliveries = answer.body["messages"].as_array().unwrap().clone();
    for delivery in &deliveries {
        let lock = delivery["lockToken"].as_str().unwrap();
        let done = server
            .request(
                "POST",
                &format!("/endpoints/{endpoint}/messages/{lock}/complete"),
                &[("authorization", token)],
                "",
            )
            .await;
        assert_eq!(done.status, 204, "{}", done.body);
    }
    deliveries
        .into_iter()
        .map(|d| d["message"].clone())
        .collect()
}

/// Probes until `done` holds or `timeout` passes; answers the last probe.
async fn poll<T, F, Fut>(timeout: Duration, mut probe: F, done: impl Fn(&T) -> bool) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = T>,
{
    let deadline = std::time::Instant::now() + timeout;
    loop {
        let value = probe().await;
        if done(&value) || std::time::Instant::now() >= deadline {
            return value;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn body_json(message: &Value) -> Value {
    serde_json::from_str(message["body"].as_str().unwrap_or("null")).unwrap_or(Value::Null)
}

#[tokio::test]
async fn the_temperature_monitor_alerts_the_device_end_to_end() {
    let zip_dir = tempfile::tempdir().unwrap();
    let zip = zip_dir.path().join("average-in-period.zip");
    build_example("average-in-period", &zip);

    let server = Server::start(&[]);
    let dev = Client::new(&server, "plant", &[]).await;
    let reviewer = Client::new(&server, "reviewers", &["--reviewer"]).await;

    let average = dev
        .upload("average-in-period", std::fs::read(&zip).unwrap())
        .await;
    // Not accepted yet: it cannot be placed in a channel.
    dev.channel("temperature").await;
    let refused = dev
        .send(
            "POST",
            "/channels/temperature/handlers",
            Some(json!({"definition": average, "version": "1.0.0",
                        "configuration": {"MeasurementType": "Temperature"}})),
        )
        .await;
    assert_error(&refused, 409, "version_not_accepted", "Pending");
    reviewer
        .ok(
            "POST",
            &format!("/handlers/definitions/{average}/1.0.0/review"),
            Some(json!({"decision": "accept"})),
        )
        .await;
    dev.activate(&average).await;

    let endpoint = dev
        .endpoint(&[("temperature", "in"), ("temperature", "out")])
        .await;
    dev.add_handler(
        "temperature",
        json!({"definition": average,
               "configuration": {"MeasurementType": "Temperature", "DurationInSeconds": "1"}}),
    )
    .await;
    dev.add_handler(
        "temperature",
        json!({"definition": "Generate Alert",
               "configuration": {
                   "Trigger": "message.AggregationMode == \"Average\" && (message.Amount < 18 || message.Amount > 27)",
                   "AlertType": "TemperatureOutOfRange"}}),
    )
    .await;
    dev.add_handler(
        "temperature",
        json!({"definition": "Forward to endpoint",
               "configuration": {"Trigger": "message.Type == \"TemperatureOutOfRange\"",
                                 "Endpoint": endpoint}}),
    )
    .await;
    let deployed = dev.deploy("temperature").await;
    assert_eq!(
        deployed["handlers"].as_array().unwrap().len(),
        3,
        "{deployed}"
    );

    let thermometer = device(&server, &endpoint, "thermo-1").await;
    for amount in [29.0, 31.0, 30.0] {
        let measurement =
            json!({"MeasurementType": "Temperature", "Amount": amount, "Unit": "C"}).to_string();
        ingest(&server, &endpoint, &thermometer, JSON, &measurement).await;
    }

    let mut alerts = Vec::new();
    for _ in 0..10 {
        alerts.extend(take(&server, &endpoint, &thermometer, 2).await);
        if !alerts.is_empty() {
            break;
        }
    }
    assert_eq!(alerts.len(), 1, "{alerts:?}\n{}", server.log());
    let alert = body_json(&alerts[0]);
    assert_eq!(alert["Type"], "TemperatureOutOfRange", "{alert}");
    assert_eq!(alert["Message"]["AggregationMode"], "Average", "{alert}");
    assert_eq!(alert["Message"]["Amount"], 30.0, "{alert}");
    assert_eq!(alert["Message"]["Unit"], "C", "{alert}");
    assert!(alert["When"].as_str().unwrap().ends_with('Z'), "{alert}");
    assert_eq!(alerts[0]["subject"], "Alert");

    // The channel shows every step: 3 measurements, the average, the alert.
    let stream = dev.stream("temperature").await;
    let subjects: Vec<&str> = stream
        .iter()
        .map(|m| m["subject"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(subjects, ["", "", "", "Average", "Alert"], "{stream:?}");
    let handlers = dev.local_handlers().await;
    assert_eq!(handlers.len(), 3);
    for handler in &handlers {
        assert_eq!(handler["state"], "Operational", "{handler}");
    }
    let average_view = handlers
        .iter()
        .find(|h| h["name"] == "average-in-period")
        .unwrap();
    assert_eq!(average_view["MeasurementType"], "Temperature");
    assert_eq!(average_view["DurationInSeconds"], "1");
    assert_eq!(average_view["OutputSubject"], "Average");
}

#[tokio::test]
async fn faulty_handlers_fault_only_themselves_and_dead_letter_after_their_tries() {
    let server = Server::start(FAST_FAULTS);
    let dev = Client::new(&server, "tester", &[]).await;
    let guest = dev.upload_active("guest", guest_package("guest")).await;
    dev.channel("faults").await;
    let endpoint = dev.endpoint(&[("faults", "in"), ("faults", "out")]).await;
    let guest_handler = dev
        .add_handler(
            "faults",
            json!({"definition": guest, "inputSubjects": [""]}),
        )
        .await;
    // A healthy neighbour on the same messages.
    dev.add_handler(
        "faults",
        json!({"definition": "Forward to endpoint", "inputSubjects": [""],
               "configuration": {"Endpoint": endpoint}}),
    )
    .await;
    dev.deploy("faults").await;
    let token = device(&server, &endpoint, "probe").await;
    let bodies = ["t", "l", "m", "o", "e", "hello"];
    for body in bodies {
        ingest(&server, &endpoint, &token, TEXT, body).await;
    }

    let letters = poll(
        Duration::from_secs(30),
        || dev.dead_letters("faults"),
        |letters| letters.len() >= 5,
    )
    .await;
    assert_eq!(letters.len(), 5, "{letters:?}");
    let reason_of = |body: &str| {
        let letter = letters
            .iter()
            .find(|l| l["message"]["body"] == body)
            .unwrap_or_else(|| panic!("no dead letter for {body}: {letters:?}"));
        assert_eq!(letter["attempts"], 2, "{letter}");
        assert_eq!(letter["handler"], guest_handler.as_str(), "{letter}");
        letter["reason"].as_str().unwrap().to_string()
    };
    assert!(reason_of("t").contains("trap"));
    assert!(reason_of("l").contains("time limit"));
    assert!(reason_of("m").contains("memory limit"));
    assert!(reason_of("o").contains("output limit"));
    assert!(reason_of("e").contains("bad input"));

    // The good message went through the faulty handler, and everything through its neighbour.
    let echoed: Vec<Value> = dev
        .stream("faults")
        .await
        .into_iter()
        .filter(|m| m["subject"] == "echo")
        .collect();
    assert_eq!(echoed.len(), 1, "{echoed:?}");
    assert_eq!(echoed[0]["body"], "hello");
    let mut forwarded = Vec::new();
    for _ in 0..5 {
        forwarded.extend(take(&server, &endpoint, &token, 1).await);
        if forwarded.len() >= bodies.len() {
            break;
        }
    }
    let mut received: Vec<&str> = forwarded
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    received.sort_unstable();
    let mut expected = bodies.to_vec();
    expected.sort_unstable();
    assert_eq!(received, expected);

    let handlers = dev.local_handlers().await;
    let guest_view = handlers
        .iter()
        .find(|h| h["handlerConfigurationId"] == guest_handler.as_str())
        .unwrap();
    assert!(guest_view["lastError"].is_string(), "{guest_view}");
    assert_eq!(guest_view["deadLettered"], 5, "{guest_view}");
    let neighbour = handlers
        .iter()
        .find(|h| h["handlerConfigurationId"] != guest_handler.as_str())
        .unwrap();
    assert_eq!(neighbour["state"], "Operational", "{neighbour}");
    assert!(neighbour["lastError"].is_null(), "{neighbour}");

    let logs = dev.logs("faults").await;
    assert!(
        logs.iter().any(|l| l["level"] == "error"
            && l["handler"] == guest_handler.as_str()
            && l["text"].as_str().unwrap().contains("dead letters")),
        "{logs:?}"
    );
}

#[tokio::test]
async fn a_restart_resumes_from_the_checkpoint_without_loss() {
    let server = Server::start(FAST_FAULTS);
    let credentials = server.create_account("tester", &[]);
    let (endpoint, token) = {
        let dev = Client::login(&server, &credentials).await;
        let guest = dev.upload_active("guest", guest_package("guest")).await;
        dev.channel("durable").await;
        let endpoint = dev.endpoint(&[("durable", "in")]).await;
        dev.add_handler(
            "durable",
            json!({"definition": guest, "inputSubjects": [""]}),
        )
        .await;
        dev.deploy("durable").await;
        (endpoint.clone(), device(&server, &endpoint, "probe").await)
    };
    let batch: Vec<Value> = (0..300).map(|n| json!({"n": n})).collect();
    ingest(
        &server,
        &endpoint,
        &token,
        JSON,
        &Value::Array(batch).to_string(),
    )
    .await;

    // Killed wherever the handler is in the batch; the deployment starts again with the server.
    let server = server.restart_after_kill();
    let echoes = |stream: Vec<Value>| -> Vec<i64> {
        stream
            .iter()
            .filter(|m| m["subject"] == "echo")
            .map(|m| body_json(m)["n"].as_i64().unwrap())
            .collect()
    };
    let all: Vec<i64> = (0..300).collect();
    let distinct = |echoed: &[i64]| {
        let mut distinct = echoed.to_vec();
        distinct.sort_unstable();
        distinct.dedup();
        distinct
    };
    let seen = {
        let dev = Client::login(&server, &credentials).await;
        let seen = poll(
            Duration::from_secs(20),
            || async { echoes(dev.stream("durable").await) },
            |echoed| distinct(echoed) == all,
        )
        .await;
        assert_eq!(distinct(&seen), all, "{}", server.log());
        seen
    };

    // Once done, a restart does not start over: the checkpoint is past every message.
    let server = server.restart_after_kill();
    let dev = Client::login(&server, &credentials).await;
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(echoes(dev.stream("durable").await).len(), seen.len());
}

#[tokio::test]
async fn input_subjects_narrow_output_routes_forward_and_the_hop_limit_stops_loops() {
    let server = Server::start(FAST_FAULTS);
    let dev = Client::new(&server, "tester", &[]).await;
    let guest = dev.upload_active("guest", guest_package("guest")).await;
    for channel in ["source", "sink", "loop"] {
        dev.channel(channel).await;
    }
    let gate = dev
        .endpoint(&[("source", "in"), ("loop", "in"), ("sink", "out")])
        .await;
    dev.add_handler(
        "source",
        json!({"definition": guest, "inputSubjects": [""],
               "outputSubjectRoutes": {"echo": {"channel": "sink"}}}),
    )
    .await;
    dev.add_handler(
        "sink",
        json!({"definition": "Forward to endpoint",
               "configuration": {"Trigger": "msg.n > 1", "Endpoint": gate}}),
    )
    .await;
    // No input subjects: the echo handler sees its own output again and again.
    let looping = dev.add_handler("loop", json!({"definition": guest})).await;
    for channel in ["source", "sink", "loop"] {
        dev.deploy(channel).await;
    }
    let token = device(&server, &gate, "probe").await;
    for n in [1, 2] {
        let body = json!({"n": n}).to_string();
        let answer = server
            .request(
                "POST",
                &format!("/endpoints/{gate}/messages"),
                &[("authorization", &token), JSON, ("x-mh-channel", "source")],
                body,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let mut received = Vec::new();
    for _ in 0..10 {
        received.extend(take(&server, &gate, &token, 1).await);
        if !received.is_empty() {
            break;
        }
    }
    assert_eq!(received.len(), 1, "{received:?}");
    assert_eq!(body_json(&received[0]), json!({"n": 2}));
    assert_eq!(received[0]["subject"], "echo");
    // The echo handler saw only messages from endpoints: one echo per input, no echo of echoes.
    let source = dev.stream("source").await;
    assert_eq!(
        source.iter().filter(|m| m["subject"] == "echo").count(),
        2,
        "{source:?}"
    );

    ingest(&server, &gate, &token, ("x-mh-channel", "loop"), "ping").await;
    let letters = poll(
        Duration::from_secs(20),
        || dev.dead_letters("loop"),
        |letters| !letters.is_empty(),
    )
    .await;
    assert!(!letters.is_empty(), "{}", server.log());
    assert_eq!(letters[0]["handler"], looping.as_str());
    let reason = letters[0]["reason"].as_str().unwrap();
    assert!(reason.contains("hop limit"), "{reason}");
    assert_eq!(letters[0]["message"]["body"], "ping");
    // Hops 1 to 4 made it into the stream; the fifth was stopped.
    let looped = dev.stream("loop").await;
    assert_eq!(looped.len(), 5, "{looped:?}");
}

/// A one-route HTTP server on loopback that records each request's headers and body and
/// answers 200. Enough for the webhook; a real server crate would be more than the test needs.
/// Requests a test receiver saw: (request line and headers, body).
type Recorded = Arc<Mutex<Vec<(String, String)>>>;

fn webhook_receiver() -> (String, Recorded) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let recorded = seen.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut head = String::new();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = value.trim().parse().unwrap_or(0);
                }
                head.push_str(&line);
            }
            let mut body = vec![0; length];
            if reader.read_exact(&mut body).is_ok() {
                recorded
                    .lock()
                    .unwrap()
                    .push((head, String::from_utf8_lossy(&body).into_owned()));
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\nconnection: close\r\n\r\n");
        }
    });
    (url, seen)
}

#[tokio::test]
async fn variables_fill_templates_at_deployment_and_the_webhook_posts_matches() {
    let server = Server::start(FAST_FAULTS);
    let dev = Client::new(&server, "tester", &[]).await;
    let (url, seen) = webhook_receiver();
    dev.channel("hooks").await;
    let gate = dev.endpoint(&[("hooks", "in")]).await;
    dev.add_handler(
        "hooks",
        json!({"definition": "Webhook",
               "configuration": {
                   "Trigger": "msg.Temperature > {{ variables.Limit }}",
                   "Url": url,
                   "Headers": {"X-Key": "{{ variables.Key }}"},
                   "Body": "{\"t\": {{ message.Temperature }}}"}}),
    )
    .await;
    let missing = dev
        .send(
            "POST",
            "/channels/hooks/deployments",
            Some(json!({"environment": "local"})),
        )
        .await;
    assert_error(&missing, 400, "unresolved_variable", "variables.Limit");

    let account = dev.ok("GET", "/accounts/me", None).await["identifier"]
        .as_str()
        .unwrap()
        .to_string();
    let channel = dev.ok("GET", "/channels/hooks", None).await["identifier"]
        .as_str()
        .unwrap()
        .to_string();
    dev.ok(
        "PUT",
        &format!("/variables/channel/{channel}/Limit"),
        Some(json!({"value": "50"})),
    )
    .await;
    dev.ok(
        "PUT",
        &format!("/variables/account/{account}/Key"),
        Some(json!({"value": "secret-1"})),
    )
    .await;
    dev.deploy("hooks").await;

    let token = device(&server, &gate, "probe").await;
    for temperature in [40, 60] {
        let body = json!({"Temperature": temperature}).to_string();
        ingest(&server, &gate, &token, JSON, &body).await;
    }
    assert!(
        eventually(Duration::from_secs(10), || async {
            !seen.lock().unwrap().is_empty()
        })
        .await,
        "{}",
        server.log()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    let requests = seen.lock().unwrap().clone();
    assert_eq!(requests.len(), 1, "{requests:?}");
    let (head, body) = &requests[0];
    assert!(head.starts_with("POST /hook "), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("x-key: secret-1"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase()
            .contains("content-type: application/json"),
        "{head}"
    );
    assert_eq!(
        serde_json::from_str::<Value>(body).unwrap(),
        json!({"t": 60})
    );
}
