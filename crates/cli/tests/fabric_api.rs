//! The fabric's control plane over real HTTP: handler configurations in channels, variables and
//! their grants, the gallery, deployments with the environment's flat handler view, channel logs
//! and dead letters, and the `mh deploy` / `mh logs` / `mh undeploy` / `mh gallery` commands.
//! Built-in handlers make all of it possible without WebAssembly packages.

mod common;

use common::{assert_error, Answer, Credentials, Server};
use serde_json::{json, Value};

const JSON: (&str, &str) = ("content-type", "application/json");
const GENERATE_ALERT_ID: &str = "6d680000-0000-4000-8000-000000000a1e";

/// An account with a bearer header value.
struct Owner {
    credentials: Credentials,
    bearer: String,
    id: String,
}

impl Owner {
    async fn new(server: &Server, name: &str) -> Owner {
        let credentials = server.create_account(name, &[]);
        let bearer = server.bearer(&credentials).await;
        let (status, me) = server.get("/accounts/me", &bearer).await;
        assert_eq!(status, 200, "{me}");
        Owner {
            credentials,
            bearer,
            id: me["identifier"].as_str().unwrap().to_string(),
        }
    }

    fn auth(&self) -> (&str, &str) {
        ("authorization", self.bearer.as_str())
    }

    async fn send(&self, server: &Server, method: &str, path: &str, body: Option<Value>) -> Answer {
        match body {
            Some(body) => {
                server
                    .request(method, path, &[self.auth(), JSON], body.to_string())
                    .await
            }
            None => server.request(method, path, &[self.auth()], "").await,
        }
    }

    async fn get(&self, server: &Server, path: &str) -> Answer {
        self.send(server, "GET", path, None).await
    }

    async fn post(&self, server: &Server, path: &str, body: Value) -> Answer {
        self.send(server, "POST", path, Some(body)).await
    }

    async fn put(&self, server: &Server, path: &str, body: Value) -> Answer {
        self.send(server, "PUT", path, Some(body)).await
    }

    async fn delete(&self, server: &Server, path: &str) -> Answer {
        self.send(server, "DELETE", path, None).await
    }

    /// Creates a channel; answers its identifier.
    async fn channel(&self, server: &Server, name: &str) -> String {
        let answer = self.post(server, "/channels", json!({"name": name})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body["identifier"].as_str().unwrap().to_string()
    }

    /// Creates an endpoint; answers its identifier.
    async fn endpoint(&self, server: &Server) -> String {
        let answer = self
            .post(server, "/endpoints/assign", json!({"name": "test-{0}"}))
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body[0]["identifier"].as_str().unwrap().to_string()
    }

    /// Adds a handler to a channel, expecting 201; answers the view.
    async fn handler(&self, server: &Server, channel: &str, request: Value) -> Value {
        let answer = self
            .post(server, &format!("/channels/{channel}/handlers"), request)
            .await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        answer.body
    }
}

fn alert(trigger: &str, alert_type: &str) -> Value {
    json!({
        "definition": "Generate Alert",
        "configuration": {"Trigger": trigger, "AlertType": alert_type},
    })
}

fn id(value: &Value) -> String {
    value["handlerConfigurationId"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn handler_configurations_are_checked_when_written() {
    let server = Server::start(&[]);
    let acme = Owner::new(&server, "acme").await;
    let rival = Owner::new(&server, "rival").await;
    let channel = acme.channel(&server, "sensors").await;
    let alerts = acme.channel(&server, "alerts").await;
    let rival_channel = rival.channel(&server, "theirs").await;
    let rival_endpoint = rival.endpoint(&server).await;

    let created = acme
        .handler(
            &server,
            "sensors",
            json!({
                "definition": "Generate Alert",
                "configuration": {"Trigger": "msg.Temperature > 50", "AlertType": "TooHot"},
                "inputSubjects": ["Reading"],
                "outputSubjectRoutes": {"Alert": {"channel": "alerts"}},
            }),
        )
        .await;
    assert_eq!(created["channelId"], channel.as_str());
    assert_eq!(created["handlerDescriptionId"], GENERATE_ALERT_ID);
    assert_eq!(created["definitionName"], "Generate Alert");
    assert_eq!(created["name"], "Generate Alert");
    assert_eq!(created["version"], "1.0.0");
    assert_eq!(
        created["configuration"],
        json!({"AlertType": "TooHot", "Trigger": "msg.Temperature > 50"})
    );
    assert_eq!(created["inputSubjects"], json!(["Reading"]));
    assert_eq!(
        created["outputSubjectRoutes"],
        json!({"Alert": {"channel": alerts}})
    );
    assert!(created["createdAt"].as_str().unwrap().contains('T'));
    let hcid = id(&created);

    // Native JSON values are kept as text.
    let native = acme
        .handler(
            &server,
            &channel,
            json!({"definition": GENERATE_ALERT_ID, "name": "Second", "configuration": {"Trigger": true, "AlertType": "Any"}}),
        )
        .await;
    assert_eq!(native["configuration"]["Trigger"], "true");

    let path = format!("/channels/{channel}/handlers");
    let rejected = |request: Value| {
        let acme = &acme;
        let server = &server;
        let path = path.clone();
        async move { acme.post(server, &path, request).await }
    };
    assert_error(
        &rejected(alert("msg.Temperature >", "TooHot")).await,
        400,
        "invalid_trigger",
        "cannot be parsed",
    );
    assert_error(
        &rejected(json!({
            "definition": "Generate Alert",
            "configuration": {"Trigger": "true", "AlertType": "x", "Colour": "red"},
        }))
        .await,
        400,
        "unknown_configuration_field",
        "Colour",
    );
    assert_error(
        &rejected(json!({"definition": "Generate Alert", "configuration": {"Trigger": "true"}}))
            .await,
        400,
        "missing_configuration_field",
        "AlertType",
    );
    let mut unknown_subject = alert("true", "x");
    unknown_subject["name"] = json!("Third");
    unknown_subject["outputSubjectRoutes"] = json!({"Nope": {"channel": alerts}});
    assert_error(
        &rejected(unknown_subject).await,
        400,
        "unknown_output_subject",
        "Nope",
    );
    let mut foreign_route = alert("true", "x");
    foreign_route["name"] = json!("Third");
    foreign_route["outputSubjectRoutes"] = json!({"Alert": {"channel": rival_channel}});
    assert_error(
        &rejected(foreign_route).await,
        400,
        "unknown_channel",
        &rival_channel,
    );
    assert_error(
        &rejected(json!({
            "definition": "Forward to endpoint",
            "configuration": {"Endpoint": rival_endpoint},
        }))
        .await,
        400,
        "unknown_endpoint",
        &rival_endpoint,
    );
    assert_error(
        &rejected(json!({"definition": "No Such Handler"})).await,
        404,
        "not_found",
        "No Such Handler",
    );
    assert_error(
        &rejected(alert("true", "x")).await,
        409,
        "conflict",
        "already has a handler named \"Generate Alert\"",
    );
    let list = acme.get(&server, &path).await;
    assert_eq!(list.status, 200, "{}", list.body);
    assert_eq!(list.body.as_array().unwrap().len(), 2, "{}", list.body);

    // Read, replace, delete.
    let item = format!("/channels/sensors/handlers/{hcid}");
    let shown = acme.get(&server, &item).await;
    assert_eq!(shown.status, 200, "{}", shown.body);
    assert_eq!(shown.body, created);
    let mut replacement = alert("msg.Temperature > 60", "Scorching");
    replacement["name"] = json!("Hot");
    let replaced = acme.put(&server, &item, replacement).await;
    assert_eq!(replaced.status, 200, "{}", replaced.body);
    assert_eq!(replaced.body["handlerConfigurationId"], hcid.as_str());
    assert_eq!(replaced.body["name"], "Hot");
    assert_eq!(replaced.body["configuration"]["AlertType"], "Scorching");
    assert_eq!(replaced.body["inputSubjects"], json!([]));
    assert_eq!(replaced.body["outputSubjectRoutes"], json!({}));
    assert_eq!(replaced.body["createdAt"], created["createdAt"]);
    let mut clash = alert("true", "x");
    clash["name"] = json!("Second");
    assert_error(
        &acme.put(&server, &item, clash).await,
        409,
        "conflict",
        "Second",
    );
    assert_error(
        &acme
            .put(
                &server,
                &item,
                json!({"definition": "Generate Alert", "configuration": {"Trigger": "("}}),
            )
            .await,
        400,
        "missing_configuration_field",
        "AlertType",
    );

    // Someone else's channel, another channel's handler, a malformed id: not found.
    assert_error(
        &rival
            .get(&server, &format!("/channels/{channel}/handlers/{hcid}"))
            .await,
        404,
        "not_found",
        "",
    );
    assert_error(
        &rival
            .delete(&server, &format!("/channels/{channel}/handlers/{hcid}"))
            .await,
        404,
        "not_found",
        "",
    );
    assert_error(
        &acme
            .get(&server, &format!("/channels/alerts/handlers/{hcid}"))
            .await,
        404,
        "not_found",
        "",
    );
    assert_error(
        &acme
            .get(&server, "/channels/sensors/handlers/not-an-id")
            .await,
        404,
        "not_found",
        "",
    );

    let deleted = acme.delete(&server, &item).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_error(&acme.get(&server, &item).await, 404, "not_found", "");
    assert_error(&acme.delete(&server, &item).await, 404, "not_found", "");
}

#[tokio::test]
async fn variables_live_in_three_scopes_and_are_shared_by_grants() {
    let server = Server::start(&[]);
    let acme = Owner::new(&server, "acme").await;
    let rival = Owner::new(&server, "rival").await;
    let channel = acme.channel(&server, "sensors").await;
    rival.channel(&server, "theirs").await;
    let local = acme.get(&server, "/environments/local").await.body["identifier"]
        .as_str()
        .unwrap()
        .to_string();

    let account_variable = acme
        .put(
            &server,
            &format!("/variables/account/{}/Threshold", acme.id),
            json!({"value": "50"}),
        )
        .await;
    assert_eq!(account_variable.status, 200, "{}", account_variable.body);
    assert_eq!(
        account_variable.body,
        json!({
            "account": acme.id, "scopeIdentifier": acme.id, "scopeType": "account",
            "name": "Threshold", "value": "50",
            "fullName": format!("account/{}/Threshold", acme.id),
        })
    );
    // Scope types ignore case; channels and environments may be named.
    let channel_variable = acme
        .put(
            &server,
            "/variables/Channel/sensors/Threshold",
            json!({"value": "60"}),
        )
        .await;
    assert_eq!(channel_variable.status, 200, "{}", channel_variable.body);
    assert_eq!(channel_variable.body["scopeIdentifier"], channel.as_str());
    assert_eq!(channel_variable.body["scopeType"], "channel");
    let environment_variable = acme
        .put(
            &server,
            "/variables/ENVIRONMENT/local/Api.Key_2-b",
            json!({"value": "secret"}),
        )
        .await;
    assert_eq!(
        environment_variable.status, 200,
        "{}",
        environment_variable.body
    );
    assert_eq!(environment_variable.body["scopeIdentifier"], local.as_str());
    assert_eq!(
        environment_variable.body["fullName"],
        format!("environment/{local}/Api.Key_2-b")
    );
    // Upsert replaces.
    let replaced = acme
        .put(
            &server,
            &format!("/variables/channel/{channel}/Threshold"),
            json!({"value": "70"}),
        )
        .await;
    assert_eq!(replaced.body["value"], "70");
    let mine = acme.get(&server, "/variables").await;
    assert_eq!(mine.status, 200, "{}", mine.body);
    let names: Vec<String> = mine
        .body
        .as_array()
        .unwrap()
        .iter()
        .map(|v| {
            format!(
                "{}={}",
                v["fullName"].as_str().unwrap(),
                v["value"].as_str().unwrap()
            )
        })
        .collect();
    assert_eq!(names.len(), 3, "{names:?}");
    assert!(
        names.contains(&format!("channel/{channel}/Threshold=70")),
        "{names:?}"
    );

    // Rejections.
    assert_error(
        &acme
            .put(&server, "/variables/device/x/Name", json!({"value": "1"}))
            .await,
        400,
        "invalid_scope_type",
        "account, channel or environment",
    );
    assert_error(
        &acme
            .put(
                &server,
                "/variables/account/acme/bad!name",
                json!({"value": "1"}),
            )
            .await,
        400,
        "invalid_name",
        "bad!name",
    );
    let long_name = "n".repeat(101);
    assert_error(
        &acme
            .put(
                &server,
                &format!("/variables/account/acme/{long_name}"),
                json!({"value": "1"}),
            )
            .await,
        400,
        "invalid_name",
        "1 to 100",
    );
    assert_error(
        &acme
            .put(
                &server,
                "/variables/account/acme/Big",
                json!({"value": "x".repeat(16 * 1024 + 1)}),
            )
            .await,
        400,
        "invalid_value",
        "16384",
    );
    assert_error(
        &acme
            .put(
                &server,
                &format!("/variables/account/{}/Threshold", rival.id),
                json!({"value": "1"}),
            )
            .await,
        403,
        "forbidden",
        "not yours",
    );
    assert_error(
        &acme
            .put(
                &server,
                "/variables/channel/theirs/Threshold",
                json!({"value": "1"}),
            )
            .await,
        404,
        "not_found",
        "theirs",
    );
    assert_error(
        &acme
            .put(
                &server,
                "/variables/environment/mars/Threshold",
                json!({"value": "1"}),
            )
            .await,
        404,
        "not_found",
        "mars",
    );

    // Reading another account's variables takes its grant.
    let acme_variables = format!("/variables/{}", acme.id);
    let refused = format!(
        "account {} has not granted you access to its variables",
        acme.id
    );
    assert_error(
        &rival.get(&server, &acme_variables).await,
        403,
        "forbidden",
        &refused,
    );
    let unknown = "00000000-0000-4000-8000-00000000abcd";
    assert_error(
        &rival.get(&server, &format!("/variables/{unknown}")).await,
        403,
        "forbidden",
        "has not granted you access",
    );
    assert_eq!(acme.get(&server, &acme_variables).await.status, 200);
    let granted = acme
        .send(
            &server,
            "PUT",
            &format!("/variables/grants/{}", rival.id),
            None,
        )
        .await;
    assert_eq!(granted.status, 204, "{}", granted.body);
    let grants = acme.get(&server, "/variables/grants").await;
    assert_eq!(grants.body, json!([{"account": rival.id}]));
    let read = rival.get(&server, &acme_variables).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body, mine.body);
    // A grant goes one way.
    assert_error(
        &acme.get(&server, &format!("/variables/{}", rival.id)).await,
        403,
        "forbidden",
        "",
    );
    assert_error(
        &acme
            .send(
                &server,
                "PUT",
                &format!("/variables/grants/{}", acme.id),
                None,
            )
            .await,
        400,
        "invalid_account",
        "your own",
    );
    assert_error(
        &acme
            .send(
                &server,
                "PUT",
                &format!("/variables/grants/{unknown}"),
                None,
            )
            .await,
        404,
        "not_found",
        unknown,
    );
    let revoked = acme
        .delete(&server, &format!("/variables/grants/{}", rival.id))
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    assert_error(
        &rival.get(&server, &acme_variables).await,
        403,
        "forbidden",
        &refused,
    );
    assert_error(
        &acme
            .delete(&server, &format!("/variables/grants/{}", rival.id))
            .await,
        404,
        "not_found",
        "",
    );

    // Deleting, in each scope.
    for path in [
        format!("/variables/account/{}/Threshold", acme.id),
        "/variables/channel/sensors/Threshold".to_string(),
        format!("/variables/environment/{local}/Api.Key_2-b"),
    ] {
        let deleted = acme.delete(&server, &path).await;
        assert_eq!(deleted.status, 204, "{path}: {}", deleted.body);
        assert_error(
            &acme.delete(&server, &path).await,
            404,
            "not_found",
            "no variable",
        );
    }
    assert_eq!(acme.get(&server, "/variables").await.body, json!([]));
}

#[tokio::test]
async fn the_gallery_lists_the_builtins() {
    let server = Server::start(&[]);
    let acme = Owner::new(&server, "acme").await;
    let gallery = acme.get(&server, "/gallery/handlers").await;
    assert_eq!(gallery.status, 200, "{}", gallery.body);
    let entries = gallery.body.as_array().unwrap();
    let names: Vec<&str> = entries
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["Generate Alert", "Forward to endpoint", "Webhook"]);
    let alert = &entries[0];
    assert_eq!(alert["identifier"], GENERATE_ALERT_ID);
    assert_eq!(alert["builtin"], true);
    assert_eq!(alert["accountName"], "system");
    assert_eq!(alert["activeVersion"], "1.0.0");
    assert_eq!(alert["outputSubjects"], json!(["Alert"]));
    let trigger = &alert["configuration"][0];
    assert_eq!(trigger["name"], "Trigger");
    assert_eq!(trigger["type"], "string");
    assert_eq!(trigger["required"], true);
    assert_eq!(trigger["outputSubject"], false);
    let subject = alert["configuration"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["name"] == "OutputSubject")
        .unwrap();
    assert_eq!(subject["default"], "Alert");
    assert_eq!(subject["outputSubject"], true);
    assert_eq!(
        server.get("/gallery/handlers", "").await.0,
        401,
        "the gallery needs a token"
    );
}

#[tokio::test]
async fn a_deployed_channel_shows_its_handlers_flat_in_the_environment() {
    let server = Server::start(&[]);
    let acme = Owner::new(&server, "acme").await;
    let rival = Owner::new(&server, "rival").await;
    let channel = acme.channel(&server, "sensors").await;
    let endpoint = acme.endpoint(&server).await;
    let alert = acme
        .handler(&server, &channel, alert("msg.Temperature > 50", "TooHot"))
        .await;
    let forward = acme
        .handler(
            &server,
            &channel,
            json!({"definition": "Forward to endpoint", "configuration": {"Endpoint": endpoint}}),
        )
        .await;
    let local = acme.get(&server, "/environments/local").await.body["identifier"]
        .as_str()
        .unwrap()
        .to_string();

    // An empty body deploys to local.
    let deployed = acme
        .send(&server, "POST", "/channels/sensors/deployments", None)
        .await;
    assert_eq!(deployed.status, 200, "{}", deployed.body);
    assert_eq!(deployed.body["channelId"], channel.as_str());
    assert_eq!(deployed.body["environmentId"], local.as_str());
    assert_eq!(deployed.body["environment"], "local");
    assert_eq!(deployed.body["handlers"].as_array().unwrap().len(), 2);
    let again = acme
        .post(
            &server,
            &format!("/channels/{channel}/deployments"),
            json!({"environment": local}),
        )
        .await;
    assert_eq!(again.status, 200, "{}", again.body);
    assert_error(
        &acme
            .post(
                &server,
                "/channels/sensors/deployments",
                json!({"environment": "mars"}),
            )
            .await,
        404,
        "not_found",
        "mars",
    );
    assert_error(
        &rival
            .post(
                &server,
                &format!("/channels/{channel}/deployments"),
                json!({}),
            )
            .await,
        404,
        "not_found",
        "",
    );

    let running = acme
        .get(&server, &format!("/environments/{local}/handlers"))
        .await;
    assert_eq!(running.status, 200, "{}", running.body);
    let handlers = running.body.as_array().unwrap();
    assert_eq!(handlers.len(), 2, "{}", running.body);
    let flat_alert = handlers
        .iter()
        .find(|h| h["handlerConfigurationId"] == alert["handlerConfigurationId"])
        .unwrap();
    assert_eq!(
        *flat_alert,
        json!({
            "channelId": channel, "handlerDescriptionId": GENERATE_ALERT_ID,
            "handlerConfigurationId": alert["handlerConfigurationId"],
            "name": "Generate Alert", "version": "1.0.0",
            "inputSubjects": [], "outputSubjectRoutes": {},
            "state": "Operational", "lastError": null, "processed": 0, "deadLettered": 0,
            "Trigger": "msg.Temperature > 50", "AlertType": "TooHot", "OutputSubject": "Alert",
        })
    );
    let flat_forward = handlers
        .iter()
        .find(|h| h["handlerConfigurationId"] == forward["handlerConfigurationId"])
        .unwrap();
    assert_eq!(flat_forward["Endpoint"], endpoint.as_str());
    assert_eq!(flat_forward["Trigger"], "true", "defaults are shown");
    assert_eq!(flat_forward["state"], "Operational");
    let one = acme
        .get(
            &server,
            &format!("/environments/local/handlers/{}", id(&forward)),
        )
        .await;
    assert_eq!(one.status, 200, "{}", one.body);
    assert_eq!(one.body, *flat_forward);
    // Other accounts see none of it.
    assert_eq!(
        rival
            .get(&server, "/environments/local/handlers")
            .await
            .body,
        json!([])
    );
    assert_error(
        &rival
            .get(
                &server,
                &format!("/environments/local/handlers/{}", id(&forward)),
            )
            .await,
        404,
        "not_found",
        "",
    );

    let deployments = acme.get(&server, "/channels/sensors/deployments").await;
    assert_eq!(deployments.status, 200, "{}", deployments.body);
    assert_eq!(deployments.body.as_array().unwrap().len(), 1);
    assert_eq!(deployments.body[0]["environment"], "local");
    assert_eq!(deployments.body[0]["environmentId"], local.as_str());
    assert!(deployments.body[0]["deployedAt"].is_string());

    // The deployments wrote the channel's log.
    let logs = acme.get(&server, "/channels/sensors/logs").await;
    assert_eq!(logs.status, 200, "{}", logs.body);
    let entries = logs.body["entries"].as_array().unwrap();
    let first = &entries[0];
    assert_eq!(
        first["text"],
        "deployed with 2 handler(s) in environment local"
    );
    assert_eq!(first["level"], "info");
    assert_eq!(first["handler"], Value::Null);
    assert_eq!(first["environment"], local.as_str());
    assert!(first["at"].as_str().unwrap().ends_with('Z'), "{first}");
    let last = entries.last().unwrap()["id"].as_str().unwrap().to_string();
    let started = std::time::Instant::now();
    let waited = acme
        .get(
            &server,
            &format!("/channels/sensors/logs?after={last}&wait=1&environment=local"),
        )
        .await;
    assert_eq!(waited.status, 200, "{}", waited.body);
    assert_eq!(waited.body, json!({"entries": []}));
    assert!(started.elapsed() >= std::time::Duration::from_millis(900));
    assert_error(
        &acme.get(&server, "/channels/sensors/logs?max=0").await,
        400,
        "invalid_max",
        "1 and 1000",
    );
    assert_error(
        &acme.get(&server, "/channels/sensors/logs?after=nope").await,
        400,
        "invalid_query",
        "",
    );
    assert_error(
        &rival.get(&server, "/channels/sensors/logs").await,
        404,
        "not_found",
        "",
    );
    let dead = acme
        .get(
            &server,
            "/channels/sensors/deadletters?environment=local&max=10",
        )
        .await;
    assert_eq!(dead.status, 200, "{}", dead.body);
    assert_eq!(dead.body, json!({"deadLetters": []}));

    // Removing a handler restarts the deployment without it.
    let removed = acme
        .delete(
            &server,
            &format!("/channels/sensors/handlers/{}", id(&alert)),
        )
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    let running = acme.get(&server, "/environments/local/handlers").await;
    assert_eq!(
        running.body.as_array().unwrap().len(),
        1,
        "{}",
        running.body
    );

    let undeployed = acme
        .delete(&server, "/channels/sensors/deployments/local")
        .await;
    assert_eq!(undeployed.status, 204, "{}", undeployed.body);
    assert_error(
        &acme
            .delete(&server, "/channels/sensors/deployments/local")
            .await,
        404,
        "not_found",
        "not deployed",
    );
    assert_eq!(
        acme.get(&server, "/environments/local/handlers").await.body,
        json!([])
    );
    assert_eq!(
        acme.get(&server, "/channels/sensors/deployments")
            .await
            .body,
        json!([])
    );
}

#[tokio::test]
async fn the_cli_deploys_shows_logs_and_undeploys() {
    let server = Server::start(&[]);
    let acme = Owner::new(&server, "acme").await;
    acme.channel(&server, "sensors").await;
    acme.handler(&server, "sensors", alert("true", "Any")).await;
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("credentials.toml");
    let run = |args: &[&str]| server.mh_client(&acme.credentials, &config, args);

    let gallery = run(&["gallery"]);
    assert!(
        gallery.status.success(),
        "{}",
        String::from_utf8_lossy(&gallery.stderr)
    );
    assert!(String::from_utf8_lossy(&gallery.stdout).contains("Forward to endpoint"));

    let deployed = run(&["deploy", "sensors"]);
    assert!(
        deployed.status.success(),
        "{}",
        String::from_utf8_lossy(&deployed.stderr)
    );
    let answer: Value = serde_json::from_slice(&deployed.stdout).unwrap();
    assert_eq!(answer["environment"], "local");
    assert_eq!(answer["handlers"][0]["state"], "Operational");

    let logs = run(&["logs", "sensors", "--environment", "local"]);
    assert!(
        logs.status.success(),
        "{}",
        String::from_utf8_lossy(&logs.stderr)
    );
    let text = String::from_utf8_lossy(&logs.stdout);
    assert!(
        text.lines()
            .any(|l| l.ends_with(" info - deployed with 1 handler(s) in environment local")),
        "{text}"
    );

    let undeployed = run(&["undeploy", "sensors"]);
    assert!(
        undeployed.status.success(),
        "{}",
        String::from_utf8_lossy(&undeployed.stderr)
    );
    let again = run(&["undeploy", "sensors"]);
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("is not deployed in environment local"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}

#[tokio::test]
async fn the_openapi_document_lists_the_fabric_routes() {
    let server = Server::start(&[]);
    let (status, openapi) = server.get("/openapi.json", "").await;
    assert_eq!(status, 200);
    for (path, method) in [
        ("/channels/{id}/handlers", "post"),
        ("/channels/{id}/handlers/{hcid}", "put"),
        ("/channels/{id}/deployments", "post"),
        ("/channels/{id}/deployments/{environment}", "delete"),
        ("/channels/{id}/logs", "get"),
        ("/channels/{id}/deadletters", "get"),
        ("/environments/{id}/handlers", "get"),
        ("/environments/{id}/handlers/{hcid}", "get"),
        ("/variables", "get"),
        ("/variables/{accountid}", "get"),
        ("/variables/{scopeType}/{scopeId}/{name}", "put"),
        ("/variables/grants", "get"),
        ("/variables/grants/{accountid}", "delete"),
        ("/gallery/handlers", "get"),
    ] {
        assert!(
            openapi["paths"][path][method].is_object(),
            "OpenAPI lacks {method} {path}"
        );
    }
    let flat = &openapi["components"]["schemas"]["EnvironmentHandlerView"];
    assert!(flat.to_string().contains("additionalProperties"), "{flat}");
}
