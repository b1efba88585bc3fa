//! Issue 4 over real HTTP: channels, endpoints, device self-registration and the HTTP gateway.

mod common;

use std::time::Duration;

use base64::Engine;
use common::{assert_error, Answer, Server};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");

/// An account with a bearer header value, as the tests use it.
struct Owner {
    bearer: String,
}

impl Owner {
    async fn new(server: &Server, name: &str) -> Owner {
        let credentials = server.create_account(name, &[]);
        Owner {
            bearer: server.bearer(&credentials).await,
        }
    }

    fn auth(&self) -> (&str, &str) {
        ("authorization", self.bearer.as_str())
    }

    async fn post(&self, server: &Server, path: &str, body: Value) -> Answer {
        server
            .request("POST", path, &[self.auth(), JSON], body.to_string())
            .await
    }

    async fn get(&self, server: &Server, path: &str) -> Answer {
        server.request("GET", path, &[self.auth()], "").await
    }

    async fn channel(&self, server: &Server, name: &str) -> String {
        let answer = self
            .post(
                server,
                "/channels",
                json!({"name": name, "description": "test"}),
            )
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["identifier"].as_str().unwrap().to_string()
    }

    /// One endpoint with the given assign fields; answers its details.
    async fn endpoint(&self, server: &Server, fields: Value) -> Value {
        let mut request = json!({"name": "test-{0}"});
        for (key, value) in fields.as_object().unwrap() {
            request[key] = value.clone();
        }
        let answer = self.post(server, "/endpoints/assign", request).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body[0].clone()
    }

    /// The endpoint's messages in `channel`, waiting until `count` arrived.
    async fn tail(&self, server: &Server, channel: &str, count: usize) -> Vec<Value> {
        let mut messages: Vec<Value> = Vec::new();
        while messages.len() < count {
            let mut path = format!("/channels/{channel}/messages?max=1000&wait=5");
            if let Some(last) = messages.last() {
                path.push_str(&format!("&after={}", last["id"].as_str().unwrap()));
            }
            let answer = self.get(server, &path).await;
            assert_eq!(answer.status, 200, "{}", answer.body);
            let page = answer.body["messages"].as_array().unwrap().clone();
            if page.is_empty() {
                break;
            }
            messages.extend(page);
        }
        messages
    }
}

fn routes(channel: &str, directions: &[&str]) -> Value {
    Value::Array(
        directions
            .iter()
            .map(|d| json!({"channel": channel, "environment": "local", "direction": d}))
            .collect(),
    )
}

fn id_of(endpoint: &Value) -> String {
    endpoint["identifier"].as_str().unwrap().to_string()
}

async fn register(
    server: &Server,
    endpoint: &str,
    device: &str,
    headers: &[(&str, &str)],
) -> Answer {
    let mut all = vec![("accept", "application/json"), JSON];
    all.extend_from_slice(headers);
    server
        .request(
            "POST",
            &format!("/devices/register/{endpoint}/{device}"),
            &all,
            "",
        )
        .await
}

async fn device_token(server: &Server, endpoint: &str, device: &str) -> String {
    let answer = register(server, endpoint, device, &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    format!("Bearer {}", answer.body["access_token"].as_str().unwrap())
}

async fn send(
    server: &Server,
    endpoint: &str,
    auth: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut all = vec![("authorization", auth)];
    all.extend_from_slice(headers);
    server
        .request(
            "POST",
            &format!("/endpoints/{endpoint}/messages"),
            &all,
            body.to_string(),
        )
        .await
}

async fn receive(server: &Server, endpoint: &str, auth: &str, query: &str) -> Vec<Value> {
    let answer = receive_answer(server, endpoint, auth, query).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    answer.body["messages"].as_array().unwrap().clone()
}

async fn settle(server: &Server, endpoint: &str, auth: &str, lock: &str, action: &str) -> Answer {
    server
        .request(
            "POST",
            &format!("/endpoints/{endpoint}/messages/{lock}/{action}"),
            &[("authorization", auth)],
            "",
        )
        .await
}

#[tokio::test]
async fn the_seed_device_registration_flow_works_end_to_end() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    let channel = owner.channel(&server, "telemetry").await;
    let endpoint = owner
        .endpoint(
            &server,
            json!({"routes": routes("telemetry", &["in", "out"])}),
        )
        .await;
    let id = id_of(&endpoint);

    let answer = register(&server, &id, "thermo-1", &[]).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let expires_at = answer.body["expires_at"].as_str().unwrap();
    assert!(expires_at.ends_with('Z'), "{expires_at}");
    let device = format!("Bearer {}", answer.body["access_token"].as_str().unwrap());

    let sent = send(
        &server,
        &id,
        &device,
        &[JSON, ("x-mh-property-site", "hall")],
        r#"{"temperature": 21.5}"#,
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let message_id = sent.body["ids"][0].as_str().unwrap().to_string();

    let tail = owner.tail(&server, &channel, 1).await;
    assert_eq!(tail.len(), 1);
    assert_eq!(tail[0]["id"], message_id.as_str());
    assert_eq!(tail[0]["device"], "thermo-1");
    assert_eq!(tail[0]["partitionKey"], "thermo-1");
    assert_eq!(tail[0]["properties"]["site"], "hall");
    assert_eq!(tail[0]["body"], r#"{"temperature": 21.5}"#);
    // By name as well as by identifier.
    assert_eq!(owner.tail(&server, "telemetry", 1).await.len(), 1);

    let other = device_token(&server, &id, "thermo-2").await;
    let direct = server
        .request(
            "POST",
            &format!("/endpoints/{id}/inbox"),
            &[
                owner.auth(),
                ("x-mh-device", "thermo-1"),
                ("content-type", "text/plain"),
            ],
            "reboot",
        )
        .await;
    assert_eq!(direct.status, 200, "{}", direct.body);

    // Addressed to thermo-1: the other device never sees it.
    assert!(receive(&server, &id, &other, "max=10&wait=0")
        .await
        .is_empty());
    let received = receive(&server, &id, &device, "max=10&wait=5").await;
    assert_eq!(received.len(), 1);
    assert_eq!(received[0]["message"]["body"], "reboot");
    assert_eq!(received[0]["deliveryCount"], 1);
    let lock = received[0]["lockToken"].as_str().unwrap();
    assert_eq!(
        settle(&server, &id, &device, lock, "complete").await.status,
        204
    );
    assert_error(
        &settle(&server, &id, &device, lock, "complete").await,
        404,
        "lock_lost",
        "lock token is unknown",
    );
    assert!(receive(&server, &id, &device, "max=10&wait=0")
        .await
        .is_empty());
}

#[tokio::test]
async fn registration_rejections_say_what_is_wrong() {
    let server = Server::start(&["--max-devices-per-endpoint", "3"]);
    let owner = Owner::new(&server, "acme").await;
    owner.channel(&server, "telemetry").await;
    let open = id_of(&owner.endpoint(&server, json!({})).await);

    assert_error(
        &register(&server, &open, "bad%20id", &[]).await,
        400,
        "invalid_device_id",
        "1 to 128",
    );
    let long = "d".repeat(129);
    assert_error(
        &register(&server, &open, &long, &[]).await,
        400,
        "invalid_device_id",
        "1 to 128",
    );
    let with_body = server
        .request(
            "POST",
            &format!("/devices/register/{open}/d1"),
            &[JSON],
            "{}",
        )
        .await;
    assert_error(&with_body, 400, "invalid_body", "empty body");
    let unknown = uuid_v4();
    assert_error(
        &register(&server, &unknown, "d1", &[]).await,
        404,
        "not_found",
        "not found",
    );
    assert_error(
        &register(&server, "not-a-uuid", "d1", &[]).await,
        404,
        "not_found",
        "not found",
    );

    let soon = (time::OffsetDateTime::now_utc() + time::Duration::seconds(2))
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap();
    let expiring = id_of(&owner.endpoint(&server, json!({"expiresAt": soon})).await);
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_error(
        &register(&server, &expiring, "d1", &[]).await,
        404,
        "not_found",
        "expired",
    );

    let disabled = id_of(
        &owner
            .endpoint(&server, json!({"registration": "disabled"}))
            .await,
    );
    assert_error(
        &register(&server, &disabled, "d1", &[]).await,
        403,
        "registration_disabled",
        "disabled",
    );

    // Takeover: knowing the id is not enough; the current token refreshes and replaces the old one.
    let first = device_token(&server, &open, "d1").await;
    assert_error(
        &register(&server, &open, "d1", &[]).await,
        409,
        "device_exists",
        "already registered",
    );
    let other = device_token(&server, &open, "d2").await;
    assert_error(
        &register(&server, &open, "d1", &[("authorization", &other)]).await,
        409,
        "device_exists",
        "current token",
    );
    let refreshed = register(&server, &open, "d1", &[("authorization", &first)]).await;
    assert_eq!(refreshed.status, 200, "{}", refreshed.body);
    let d1_owner = owner.get(&server, &format!("/endpoints/{open}")).await;
    let inbound = d1_owner.body["signatures"]["inbound"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        send(&server, &open, &inbound, &[], "x").await.status,
        403,
        "no inbound route"
    );
    assert_error(
        &receive_answer(&server, &open, &first, "").await,
        401,
        "unauthorized",
        "replaced by a newer one",
    );

    // The per-endpoint device limit.
    device_token(&server, &open, "d3").await;
    assert_error(
        &register(&server, &open, "d4", &[]).await,
        403,
        "device_limit_reached",
        "most devices",
    );
}

fn uuid_v4() -> String {
    uuid::Uuid::new_v4().to_string()
}

async fn receive_answer(server: &Server, endpoint: &str, auth: &str, query: &str) -> Answer {
    server
        .request(
            "GET",
            &format!("/endpoints/{endpoint}/messages?{query}"),
            &[("authorization", auth)],
            "",
        )
        .await
}

#[tokio::test]
async fn key_policy_registration_needs_a_proof_from_the_enrollment_key() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    let id = id_of(
        &owner
            .endpoint(&server, json!({"registration": "key"}))
            .await,
    );
    let details = owner.get(&server, &format!("/endpoints/{id}")).await;
    assert_eq!(details.body["registration"], "key");
    let key = base64::engine::general_purpose::STANDARD
        .decode(details.body["enrollmentKey"].as_str().unwrap())
        .unwrap();
    let proof = mh_gateway::enrollment_proof(&key, "sensor-7");

    assert_error(
        &register(&server, &id, "sensor-7", &[]).await,
        401,
        "unauthorized",
        "requires a device key proof",
    );
    let wrong = mh_gateway::enrollment_proof(&key, "sensor-8");
    assert_error(
        &register(&server, &id, "sensor-7", &[("x-mh-device-key", &wrong)]).await,
        401,
        "unauthorized",
        "proof is invalid",
    );
    let ok = register(&server, &id, "sensor-7", &[("x-mh-device-key", &proof)]).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    // The proof also re-registers (e.g. a device that lost its token).
    let again = register(&server, &id, "sensor-7", &[("x-mh-device-key", &proof)]).await;
    assert_eq!(again.status, 200, "{}", again.body);
    // The list shows the device; the enrollment key is never in the list.
    let list = owner.get(&server, "/endpoints").await;
    assert!(list.body[0].get("enrollmentKey").is_none());
    let devices = owner
        .get(&server, &format!("/endpoints/{id}/devices"))
        .await;
    assert_eq!(devices.body[0]["deviceId"], "sensor-7");
}

#[tokio::test]
async fn registration_is_rate_limited_per_address() {
    let server = Server::start(&["--registration-rate", "1"]);
    let owner = Owner::new(&server, "acme").await;
    let id = id_of(&owner.endpoint(&server, json!({})).await);
    let mut limited = None;
    for n in 0..5 {
        let answer = register(&server, &id, &format!("d{n}"), &[]).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("the fifth registration in a burst is refused");
    assert_error(&limited, 429, "too_many_requests", "from this address");
    assert!(limited.headers.get("retry-after").is_some());
}

#[tokio::test]
async fn registration_is_rate_limited_per_endpoint() {
    let server = Server::start(&["--endpoint-registration-rate", "1"]);
    let owner = Owner::new(&server, "acme").await;
    let busy = id_of(&owner.endpoint(&server, json!({})).await);
    let quiet = id_of(&owner.endpoint(&server, json!({})).await);
    let mut limited = None;
    for n in 0..5 {
        let answer = register(&server, &busy, &format!("d{n}"), &[]).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
    }
    let limited = limited.expect("a burst on one endpoint is refused");
    assert_error(&limited, 429, "too_many_requests", "on this endpoint");
    // Other endpoints are not affected.
    assert_eq!(register(&server, &quiet, "d0", &[]).await.status, 200);
}

#[tokio::test]
async fn ingress_is_authorized_routed_and_bounded() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    let stranger = Owner::new(&server, "stranger").await;
    let first = owner.channel(&server, "first").await;
    let second = owner.channel(&server, "second").await;
    owner.channel(&server, "third").await;
    let mut both = routes("first", &["in"]);
    both.as_array_mut()
        .unwrap()
        .extend(routes("second", &["in"]).as_array().unwrap().clone());
    let endpoint = owner.endpoint(&server, json!({"routes": both})).await;
    let id = id_of(&endpoint);
    let inbound = endpoint["signatures"]["inbound"].as_str().unwrap();
    let outbound = endpoint["signatures"]["outbound"].as_str().unwrap();
    assert!(
        inbound.starts_with("SharedAccessSignature sr="),
        "{inbound}"
    );
    assert!(inbound.contains("&skn=inbound"), "{inbound}");

    assert_error(
        &send(&server, &id, "", &[], "x").await,
        401,
        "unauthorized",
        "Authorization",
    );
    assert_error(
        &send(&server, &id, "Basic abc", &[], "x").await,
        401,
        "unauthorized",
        "scheme",
    );
    assert_error(
        &send(&server, &id, outbound, &[], "x").await,
        401,
        "unauthorized",
        "does not allow this direction",
    );
    let forged = inbound.replace("&se=", "&se=1");
    assert_error(
        &send(&server, &id, &forged, &[], "x").await,
        401,
        "unauthorized",
        "invalid",
    );
    assert_error(
        &send(&server, &id, &stranger.bearer, &[], "x").await,
        404,
        "not_found",
        "not found",
    );
    assert_error(
        &send(&server, &uuid_v4(), inbound, &[], "x").await,
        404,
        "not_found",
        "not found",
    );

    // Without routing headers: every inbound route.
    let all = send(
        &server,
        &id,
        inbound,
        &[("content-type", "text/plain")],
        "to both",
    )
    .await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["ids"].as_array().unwrap().len(), 2);
    // Narrowed by name or identifier, with the owner's bearer token.
    let narrowed = send(
        &server,
        &id,
        &owner.bearer,
        &[("x-mh-channel", "second"), ("x-mh-environment", "local")],
        "only second",
    )
    .await;
    assert_eq!(narrowed.status, 200, "{}", narrowed.body);
    assert_eq!(narrowed.body["routes"][0]["channel"], second.as_str());
    let by_id = send(
        &server,
        &id,
        inbound,
        &[("x-mh-channel", &first)],
        "only first",
    )
    .await;
    assert_eq!(by_id.body["routes"].as_array().unwrap().len(), 1);
    assert_error(
        &send(&server, &id, inbound, &[("x-mh-channel", "third")], "x").await,
        403,
        "route_not_authorized",
        "channel third",
    );
    assert_error(
        &send(
            &server,
            &id,
            inbound,
            &[("x-mh-environment", "elsewhere")],
            "x",
        )
        .await,
        403,
        "route_not_authorized",
        "environment elsewhere",
    );

    let first_tail = owner.tail(&server, "first", 2).await;
    let bodies: Vec<&str> = first_tail
        .iter()
        .map(|m| m["body"].as_str().unwrap())
        .collect();
    assert_eq!(bodies, ["to both", "only first"]);
    let second_tail = owner.tail(&server, "second", 2).await;
    assert_eq!(second_tail[1]["body"], "only second");
    assert_eq!(second_tail[0]["contentType"], "text/plain");

    let too_large = "x".repeat(256 * 1024 + 1);
    assert_error(
        &send(&server, &id, inbound, &[], &too_large).await,
        413,
        "body_too_large",
        "larger",
    );
    let largest = "x".repeat(256 * 1024);
    assert_eq!(
        send(
            &server,
            &id,
            inbound,
            &[("x-mh-channel", "first")],
            &largest
        )
        .await
        .status,
        200
    );

    // Idempotency: a retry with the same message id stores nothing new.
    let once = send(
        &server,
        &id,
        inbound,
        &[("x-mh-channel", "first"), ("x-mh-message-id", "m-1")],
        "once",
    )
    .await;
    let retry = send(
        &server,
        &id,
        inbound,
        &[("x-mh-channel", "first"), ("x-mh-message-id", "m-1")],
        "once",
    )
    .await;
    assert_eq!(once.body["ids"], retry.body["ids"]);
    assert_eq!(owner.tail(&server, "first", 10).await.len(), 4);
}

#[tokio::test]
async fn a_json_array_of_1000_is_1000_messages() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    owner.channel(&server, "bulk").await;
    let endpoint = owner
        .endpoint(&server, json!({"routes": routes("bulk", &["in"])}))
        .await;
    let inbound = endpoint["signatures"]["inbound"].as_str().unwrap();
    let batch: Vec<Value> = (0..1000).map(|n| json!({"n": n})).collect();
    let answer = send(
        &server,
        &id_of(&endpoint),
        inbound,
        &[JSON],
        &Value::Array(batch).to_string(),
    )
    .await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["ids"].as_array().unwrap().len(), 1000);
    let tail = owner.tail(&server, "bulk", 1000).await;
    assert_eq!(tail.len(), 1000);
    for (n, message) in tail.iter().enumerate() {
        assert_eq!(message["body"], format!("{{\"n\":{n}}}"));
    }
    assert_error(
        &send(&server, &id_of(&endpoint), inbound, &[JSON], "[1, 2").await,
        400,
        "invalid_json",
        "JSON array",
    );
}

#[tokio::test]
async fn locks_expire_abandon_redelivers_and_dead_letters_collect() {
    let server = Server::start(&["--lock-duration", "1", "--max-deliveries", "2"]);
    let owner = Owner::new(&server, "acme").await;
    let endpoint = owner.endpoint(&server, json!({})).await;
    let id = id_of(&endpoint);
    let outbound = endpoint["signatures"]["outbound"]
        .as_str()
        .unwrap()
        .to_string();
    let direct = |body: &'static str| {
        let auth = owner.auth();
        let server = &server;
        let id = id.clone();
        async move {
            let answer = server
                .request("POST", &format!("/endpoints/{id}/inbox"), &[auth], body)
                .await;
            assert_eq!(answer.status, 200, "{}", answer.body);
        }
    };
    direct("expiring").await;
    let first = receive(&server, &id, &outbound, "max=5").await;
    assert_eq!(first.len(), 1);
    assert!(
        receive(&server, &id, &outbound, "max=5").await.is_empty(),
        "locked"
    );
    // The lock expires: delivered again (long poll wakes up for it).
    let again = receive(&server, &id, &outbound, "max=5&wait=5").await;
    assert_eq!(again.len(), 1);
    assert_eq!(again[0]["deliveryCount"], 2);
    assert_eq!(again[0]["message"]["id"], first[0]["message"]["id"]);
    let stale = first[0]["lockToken"].as_str().unwrap();
    assert_error(
        &settle(&server, &id, &outbound, stale, "complete").await,
        404,
        "lock_lost",
        "expired",
    );
    // Second delivery abandoned: it has used up its deliveries and is dead-lettered.
    let lock = again[0]["lockToken"].as_str().unwrap();
    assert_eq!(
        settle(&server, &id, &outbound, lock, "abandon")
            .await
            .status,
        204
    );
    let dead = server
        .request(
            "GET",
            &format!("/endpoints/{id}/deadletter"),
            &[("authorization", &outbound)],
            "",
        )
        .await;
    assert_eq!(dead.status, 200, "{}", dead.body);
    assert_eq!(dead.body["messages"][0]["message"]["body"], "expiring");
    assert_eq!(dead.body["messages"][0]["deliveryCount"], 2);

    // Abandon makes a message visible again at once.
    direct("abandoned").await;
    let got = receive(&server, &id, &outbound, "max=5").await;
    let lock = got[0]["lockToken"].as_str().unwrap();
    assert_eq!(
        settle(&server, &id, &outbound, lock, "abandon")
            .await
            .status,
        204
    );
    let back = receive(&server, &id, &outbound, "max=5").await;
    assert_eq!(back[0]["message"]["body"], "abandoned");
    assert_eq!(back[0]["deliveryCount"], 2);
}

#[tokio::test]
async fn cors_answers_only_allowed_origins() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    owner.channel(&server, "web").await;
    let endpoint = owner
        .endpoint(&server, json!({"routes": routes("web", &["in"]), "allowedOrigins": ["https://app.example.com"]}))
        .await;
    let id = id_of(&endpoint);
    let path = format!("/endpoints/{id}/messages");
    let preflight = server
        .request(
            "OPTIONS",
            &path,
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
                (
                    "access-control-request-headers",
                    "authorization, content-type",
                ),
            ],
            "",
        )
        .await;
    assert_eq!(preflight.status, 204, "{}", preflight.body);
    assert_eq!(
        preflight.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    assert!(preflight.headers["access-control-allow-methods"]
        .to_str()
        .unwrap()
        .contains("POST"));
    assert_eq!(
        preflight.headers["access-control-allow-headers"],
        "authorization, content-type"
    );

    let refused = server
        .request(
            "OPTIONS",
            &path,
            &[
                ("origin", "https://evil.example.com"),
                ("access-control-request-method", "POST"),
            ],
            "",
        )
        .await;
    assert_error(&refused, 403, "origin_not_allowed", "allowed origins");
    assert!(refused.headers.get("access-control-allow-origin").is_none());

    let inbound = endpoint["signatures"]["inbound"].as_str().unwrap();
    let allowed = send(
        &server,
        &id,
        inbound,
        &[("origin", "https://app.example.com")],
        "hi",
    )
    .await;
    assert_eq!(allowed.status, 200);
    assert_eq!(
        allowed.headers["access-control-allow-origin"],
        "https://app.example.com"
    );
    let other = send(
        &server,
        &id,
        inbound,
        &[("origin", "https://evil.example.com")],
        "hi",
    )
    .await;
    assert!(other.headers.get("access-control-allow-origin").is_none());

    // An endpoint without allowed origins answers no preflight.
    let plain = id_of(&owner.endpoint(&server, json!({})).await);
    let none = server
        .request(
            "OPTIONS",
            &format!("/endpoints/{plain}/messages"),
            &[("origin", "https://app.example.com")],
            "",
        )
        .await;
    assert_eq!(none.status, 403);
}

#[tokio::test]
async fn key_rotation_invalidates_old_signatures() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    owner.channel(&server, "rotating").await;
    let endpoint = owner
        .endpoint(&server, json!({"routes": routes("rotating", &["in"])}))
        .await;
    let id = id_of(&endpoint);
    let old = endpoint["signatures"]["inbound"]
        .as_str()
        .unwrap()
        .to_string();
    let device = device_token(&server, &id, "keeper").await;
    assert_eq!(send(&server, &id, &old, &[], "before").await.status, 200);

    let rotated = owner
        .post(&server, &format!("/endpoints/{id}/keys/rotate"), json!({}))
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    let new = rotated.body["signatures"]["inbound"].as_str().unwrap();
    assert_ne!(new, old);
    assert_error(
        &send(&server, &id, &old, &[], "after").await,
        401,
        "unauthorized",
        "rotated",
    );
    assert_eq!(send(&server, &id, new, &[], "after").await.status, 200);
    // Device tokens are not SAS keys: devices stay connected across a rotation.
    assert_eq!(send(&server, &id, &device, &[], "device").await.status, 200);

    let stranger = Owner::new(&server, "stranger").await;
    let foreign = stranger
        .post(&server, &format!("/endpoints/{id}/keys/rotate"), json!({}))
        .await;
    assert_error(&foreign, 404, "not_found", "not found");
}

#[tokio::test]
async fn the_control_plane_manages_channels_endpoints_and_devices() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    let stranger = Owner::new(&server, "stranger").await;

    let channel = owner.channel(&server, "orders").await;
    let duplicate = owner
        .post(&server, "/channels", json!({"name": "orders"}))
        .await;
    assert_error(&duplicate, 409, "conflict", "already exists");
    assert_error(
        &owner
            .post(&server, "/channels", json!({"name": "bad name"}))
            .await,
        400,
        "invalid_name",
        "1 to 64",
    );
    assert_eq!(
        owner.get(&server, "/channels/orders").await.body["identifier"],
        channel.as_str()
    );
    assert_eq!(
        owner
            .get(&server, &format!("/channels/{channel}"))
            .await
            .body["name"],
        "orders"
    );
    assert_error(
        &stranger.get(&server, &format!("/channels/{channel}")).await,
        404,
        "not_found",
        "no channel",
    );
    // The same name in another account is another channel.
    stranger.channel(&server, "orders").await;

    let environments = owner.get(&server, "/environments").await;
    assert_eq!(environments.body[0]["name"], "local");
    let staging = owner
        .post(&server, "/environments", json!({"name": "staging"}))
        .await;
    assert_eq!(staging.status, 201, "{}", staging.body);
    assert_eq!(
        owner.get(&server, "/environments/staging").await.status,
        200
    );
    assert_error(
        &stranger.get(&server, "/environments/staging").await,
        404,
        "not_found",
        "no environment",
    );

    // The quick form, as JSON and as a form: one endpoint, reused.
    let quick = owner
        .post(
            &server,
            "/endpoints",
            json!({"protocol": "http", "channel": "orders", "environment": "local"}),
        )
        .await;
    assert_eq!(quick.status, 201, "{}", quick.body);
    let id = quick.body["identifier"].as_str().unwrap().to_string();
    assert_eq!(quick.body["host"], server.url.as_str());
    assert_eq!(quick.body["path"], format!("/endpoints/{id}/messages"));
    let form = server
        .request(
            "POST",
            "/endpoints",
            &[
                owner.auth(),
                ("content-type", "application/x-www-form-urlencoded"),
            ],
            "protocol=http&channel=orders&environment=local",
        )
        .await;
    assert_eq!(form.status, 200, "{}", form.body);
    assert_eq!(form.body["identifier"], id.as_str());
    assert_error(
        &owner
            .post(
                &server,
                "/endpoints",
                json!({"protocol": "ftp", "channel": "orders", "environment": "local"}),
            )
            .await,
        400,
        "unsupported_protocol",
        "not supported",
    );
    assert_error(
        &owner.post(&server, "/endpoints/assign", json!({"name": "x", "routes": [{"channel": "nope", "environment": "local", "direction": "in"}]})).await,
        404,
        "not_found",
        "no channel",
    );
    assert_error(
        &owner
            .post(
                &server,
                "/endpoints/assign",
                json!({"name": "x", "count": 0}),
            )
            .await,
        400,
        "invalid_count",
        "between 1 and",
    );
    let many = owner
        .post(
            &server,
            "/endpoints/assign",
            json!({"name": "sensor-{0}", "count": 3}),
        )
        .await;
    assert_eq!(many.body.as_array().unwrap().len(), 3);
    let first = &many.body[0];
    assert_eq!(
        first["name"],
        format!("sensor-{}", first["identifier"].as_str().unwrap())
    );

    let details = owner.get(&server, &format!("/endpoints/{id}")).await;
    assert_eq!(details.body["routes"].as_array().unwrap().len(), 2);
    assert!(details.body["enrollmentKey"].is_string());
    assert_error(
        &stranger.get(&server, &format!("/endpoints/{id}")).await,
        404,
        "not_found",
        "not found",
    );

    // Devices: disable, enable, delete; tokens follow at once.
    let token = device_token(&server, &id, "d1").await;
    let disabled = owner
        .post(
            &server,
            &format!("/endpoints/{id}/devices/d1/disable"),
            json!({}),
        )
        .await;
    assert_eq!(disabled.body["disabled"], true);
    assert_error(
        &send(&server, &id, &token, &[], "x").await,
        403,
        "device_disabled",
        "disabled",
    );
    owner
        .post(
            &server,
            &format!("/endpoints/{id}/devices/d1/enable"),
            json!({}),
        )
        .await;
    assert_eq!(send(&server, &id, &token, &[], "x").await.status, 200);
    assert_error(
        &stranger
            .post(
                &server,
                &format!("/endpoints/{id}/devices/d1/disable"),
                json!({}),
            )
            .await,
        404,
        "not_found",
        "not found",
    );
    let deleted = server
        .request(
            "DELETE",
            &format!("/endpoints/{id}/devices/d1"),
            &[owner.auth()],
            "",
        )
        .await;
    assert_eq!(deleted.status, 204);
    assert_error(
        &send(&server, &id, &token, &[], "x").await,
        401,
        "unauthorized",
        "no longer exists",
    );
    let missing = server
        .request(
            "DELETE",
            &format!("/endpoints/{id}/devices/d1"),
            &[owner.auth()],
            "",
        )
        .await;
    assert_error(&missing, 404, "not_found", "d1");
    assert_error(
        &server
            .request(
                "POST",
                &format!("/endpoints/{id}/inbox"),
                &[owner.auth(), ("x-mh-device", "d1")],
                "x",
            )
            .await,
        404,
        "not_found",
        "not registered",
    );

    let gone = server
        .request("DELETE", &format!("/endpoints/{id}"), &[owner.auth()], "")
        .await;
    assert_eq!(gone.status, 204);
    assert_error(
        &send(&server, &id, &owner.bearer, &[], "x").await,
        404,
        "not_found",
        "not found",
    );
}

#[tokio::test]
async fn many_locks_complete_in_one_request() {
    let server = Server::start(&[]);
    let owner = Owner::new(&server, "acme").await;
    let endpoint = owner.endpoint(&server, json!({})).await;
    let id = id_of(&endpoint);
    let outbound = endpoint["signatures"]["outbound"]
        .as_str()
        .unwrap()
        .to_string();
    for body in ["one", "two", "three"] {
        let answer = server
            .request(
                "POST",
                &format!("/endpoints/{id}/inbox"),
                &[owner.auth()],
                body,
            )
            .await;
        assert_eq!(answer.status, 200, "{}", answer.body);
    }
    let deliveries = receive(&server, &id, &outbound, "max=10").await;
    assert_eq!(deliveries.len(), 3);
    let mut tokens: Vec<String> = deliveries
        .iter()
        .map(|d| d["lockToken"].as_str().unwrap().to_string())
        .collect();
    tokens.push("0123456789abcdef0123456789abcdef".into());

    let complete = |body: Value| {
        let server = &server;
        let path = format!("/endpoints/{id}/messages/complete");
        let outbound = outbound.clone();
        async move {
            server
                .request(
                    "POST",
                    &path,
                    &[("authorization", &outbound), JSON],
                    body.to_string(),
                )
                .await
        }
    };
    let answer = complete(json!({ "lockTokens": tokens })).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    assert_eq!(answer.body["completed"], json!(tokens[..3]));
    assert_eq!(answer.body["lost"], json!([tokens[3]]));
    assert!(receive(&server, &id, &outbound, "max=10").await.is_empty());
    // Completing twice: the locks are gone.
    let again = complete(json!({ "lockTokens": [tokens[0]] })).await;
    assert_eq!(again.body["lost"], json!([tokens[0]]));

    assert_error(
        &complete(json!({ "lockTokens": [] })).await,
        400,
        "invalid_lock_tokens",
        "send 1 to 1000",
    );
    let too_many: Vec<String> = (0..1001).map(|i| format!("{i:032x}")).collect();
    assert_error(
        &complete(json!({ "lockTokens": too_many })).await,
        400,
        "invalid_lock_tokens",
        "1001 tokens",
    );
    let unknown_field = complete(json!({ "tokens": ["x"] })).await;
    assert_eq!(unknown_field.status, 422, "{}", unknown_field.body);
    assert!(
        unknown_field.body["message"]
            .as_str()
            .unwrap()
            .contains("unknown field"),
        "{}",
        unknown_field.body
    );
    let unsigned = server
        .request(
            "POST",
            &format!("/endpoints/{id}/messages/complete"),
            &[JSON],
            json!({"lockTokens": ["x"]}).to_string(),
        )
        .await;
    assert_eq!(unsigned.status, 401, "{}", unsigned.body);
}
