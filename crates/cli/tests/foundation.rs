//! Issue 2 over real HTTP: `mh serve`, the admin CLI, `POST /authorize`, bearer authentication.

mod common;

use std::time::Duration;

use common::{admin, assert_json_error, bearer, eventually, mh, Server, SCOPE};
use serde_json::{json, Value};

/// `POST /authorize` with a raw body of the given content type.
async fn post_raw(
    server: &Server,
    content_type: &str,
    body: impl Into<reqwest::Body>,
) -> (u16, Value) {
    let response = server
        .http
        .post(server.url("/authorize"))
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

fn client_credentials(c: &common::Credentials) -> Value {
    json!({
        "grant_type": "client_credentials",
        "client_id": c.client_id,
        "client_secret": c.client_secret,
        "scope": SCOPE,
    })
}

async fn post_form(
    server: &Server,
    pairs: &[(&str, &str)],
) -> (u16, Value, reqwest::header::HeaderMap) {
    let response = server
        .http
        .post(server.url("/authorize"))
        .form(pairs)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    (status, response.json().await.unwrap(), headers)
}

#[tokio::test]
async fn seed_json_body_gives_exactly_the_seed_fields() {
    let server = Server::start(&[]);
    let acme = server.create_account("acme", &[]);
    // The seed's own spelling: client_Secret.
    let (status, body, headers) = server
        .authorize_json(json!({
            "client_id": acme.client_id,
            "client_Secret": acme.client_secret,
            "scope": SCOPE,
            "grant_type": "client_credentials",
        }))
        .await;
    assert_eq!(status, 200, "{body}");
    let mut fields: Vec<&str> = body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    fields.sort_unstable();
    assert_eq!(
        fields,
        [
            "access_token",
            "expires_in",
            "refresh_token",
            "scope",
            "token_type"
        ]
    );
    assert_eq!(
        body["token_type"],
        "http://schemas.xmlsoap.org/ws/2009/11/swt-token-profile-1.0"
    );
    assert_eq!(body["scope"], SCOPE);
    assert_eq!(body["expires_in"], 3600);
    assert_eq!(headers["cache-control"], "no-store");
    let token = body["access_token"].as_str().unwrap();
    for claim in [
        "Issuer=",
        "Audience=",
        "ExpiresOn=",
        "Account=",
        "ClientId=",
        "&HMACSHA256=",
    ] {
        assert!(token.contains(claim), "{token} lacks {claim}");
    }

    // Seed form of the bearer: base64 of the token; the raw token works too.
    for value in [bearer(token), format!("Bearer {token}")] {
        let (status, me) = server.get("/accounts/me", &value).await;
        assert_eq!(status, 200, "{me}");
        assert_eq!(me["name"], "acme");
        assert_eq!(me["kind"], "personal");
        assert_eq!(me["reviewer"], false);
    }
}

#[tokio::test]
async fn form_body_and_refresh_grant() {
    let server = Server::start(&[]);
    let org = server.create_account("big-org", &["--organization", "--reviewer"]);
    let (status, first, _) = post_form(
        &server,
        &[
            ("grant_type", "client_credentials"),
            ("client_id", &org.client_id),
            ("client_secret", &org.client_secret),
            ("scope", SCOPE),
        ],
    )
    .await;
    assert_eq!(status, 200, "{first}");
    let refresh = first["refresh_token"].as_str().unwrap().to_string();

    let (status, second, _) = post_form(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &org.client_id),
            ("client_secret", &org.client_secret),
        ],
    )
    .await;
    assert_eq!(status, 200, "{second}");
    assert_ne!(second["refresh_token"], first["refresh_token"]);
    let (status, me) = server
        .get(
            "/accounts/me",
            &bearer(second["access_token"].as_str().unwrap()),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(me["name"], "big-org");
    assert_eq!(me["kind"], "organization");
    assert_eq!(me["reviewer"], true);

    // A refresh token is single use.
    let (status, again, _) = post_form(
        &server,
        &[
            ("grant_type", "refresh_token"),
            ("refresh_token", &refresh),
            ("client_id", &org.client_id),
            ("client_secret", &org.client_secret),
        ],
    )
    .await;
    assert_json_error(status, &again, 400, "invalid_grant", "already used");
    assert_eq!(again["error_description"], again["message"]);
}

#[tokio::test]
async fn every_token_endpoint_error() {
    let server = Server::start(&[]);
    let acme = server.create_account("acme", &[]);
    let other = server.create_account("other", &[]);

    // Wrong secret and unknown client: 401 invalid_client with a challenge.
    for (id, secret) in [
        (acme.client_id.as_str(), "not-the-secret"),
        (
            "0b3d5e6c-0000-4000-8000-000000000000",
            acme.client_secret.as_str(),
        ),
        ("not-a-uuid", "x"),
    ] {
        let (status, body, headers) = server
            .authorize_json(json!({"grant_type": "client_credentials", "client_id": id, "client_secret": secret, "scope": SCOPE}))
            .await;
        assert_json_error(
            status,
            &body,
            401,
            "invalid_client",
            "client authentication failed",
        );
        assert!(headers["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Basic"));
        assert!(body["error_description"].is_string());
    }

    let (status, body, _) = server
        .authorize_json(json!({"grant_type": "client_credentials", "client_id": acme.client_id, "client_secret": acme.client_secret, "scope": "http://elsewhere/"}))
        .await;
    assert_json_error(
        status,
        &body,
        400,
        "invalid_scope",
        "http://api.messagehandler.net/",
    );

    let (status, body, _) = server
        .authorize_json(json!({"grant_type": "password", "client_id": acme.client_id, "client_secret": acme.client_secret}))
        .await;
    assert_json_error(status, &body, 400, "unsupported_grant_type", "password");

    let (status, body, _) = server
        .authorize_json(json!({"client_id": acme.client_id, "client_secret": acme.client_secret}))
        .await;
    assert_json_error(status, &body, 400, "invalid_request", "grant_type");

    let (status, body, _) = server
        .authorize_json(json!({"grant_type": "client_credentials", "client_id": acme.client_id}))
        .await;
    assert_json_error(status, &body, 400, "invalid_request", "client_secret");

    let (status, body, _) = server
        .authorize_json(
            json!({"grant_type": "client_credentials", "client_id": 42, "client_secret": "x"}),
        )
        .await;
    assert_json_error(status, &body, 400, "invalid_request", "must be a string");

    // Refresh grant problems: missing, unknown, another client's token.
    let mut refresh = client_credentials(&acme);
    refresh["grant_type"] = json!("refresh_token");
    let (status, body, _) = server.authorize_json(refresh.clone()).await;
    assert_json_error(status, &body, 400, "invalid_request", "refresh_token");
    refresh["refresh_token"] = json!("made-up");
    let (status, body, _) = server.authorize_json(refresh.clone()).await;
    assert_json_error(status, &body, 400, "invalid_grant", "unknown");
    let (_, others, _) = server.authorize_json(client_credentials(&other)).await;
    refresh["refresh_token"] = others["refresh_token"].clone();
    let (status, body, _) = server.authorize_json(refresh).await;
    assert_json_error(status, &body, 400, "invalid_grant", "another client");

    // Unparseable bodies and unsupported media types.
    let (status, body) = post_raw(&server, "application/json", "{not json").await;
    assert_json_error(status, &body, 400, "invalid_request", "not a JSON object");

    let (status, body) = post_raw(&server, "text/plain", "grant_type=client_credentials").await;
    assert_json_error(
        status,
        &body,
        415,
        "unsupported_media_type",
        "application/x-www-form-urlencoded",
    );

    let (status, body) = post_raw(&server, "application/json", vec![b' '; 200 * 1024]).await;
    assert_json_error(
        status,
        &body,
        413,
        "body_too_large",
        "larger than this route accepts",
    );
}

#[tokio::test]
async fn bearer_failures_say_why() {
    let server = Server::start(&[]);
    let acme = server.create_account("acme", &[]);
    let token = server.token(&acme).await;

    let response = server
        .http
        .get(server.url("/accounts/me"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let challenge = response.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(challenge.contains("error=\"invalid_token\""), "{challenge}");
    let body: Value = response.json().await.unwrap();
    assert_json_error(401, &body, 401, "invalid_token", "access token is required");

    let forged = token.replace("ExpiresOn=", "ExpiresOn=9");
    let cases = [
        ("Basic abc".to_string(), "must be Bearer"),
        ("Bearer".to_string(), "must be 'Bearer <token>'"),
        (
            "Bearer %%%".to_string(),
            "neither an access token nor its base64",
        ),
        (bearer("Issuer=x&Audience=y"), "no HMACSHA256 signature"),
        (bearer(&forged), "signature is invalid"),
    ];
    for (value, reason) in cases {
        let (status, body) = server.get("/accounts/me", &value).await;
        assert_json_error(status, &body, 401, "invalid_token", reason);
    }
}

#[tokio::test]
async fn tokens_expire_after_the_configured_lifetime() {
    let server = Server::start(&["--token-lifetime", "1"]);
    let acme = server.create_account("acme", &[]);
    let (status, body, _) = server.authorize_json(client_credentials(&acme)).await;
    assert_eq!(status, 200);
    assert_eq!(body["expires_in"], 1);
    let value = bearer(body["access_token"].as_str().unwrap());
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let (status, body) = server.get("/accounts/me", &value).await;
    assert_json_error(status, &body, 401, "invalid_token", "expired");
}

#[tokio::test]
async fn revoked_clients_lose_tokens_and_refreshes() {
    let server = Server::start(&[]);
    let acme = server.create_account("acme", &[]);
    let spare = server.admin(&["client", "create", "acme"]);
    assert_eq!(spare["account"], "acme");
    let (_, issued, _) = server.authorize_json(client_credentials(&acme)).await;
    let value = bearer(issued["access_token"].as_str().unwrap());
    assert_eq!(server.get("/accounts/me", &value).await.0, 200);

    let out = server.admin(&["client", "revoke", &acme.client_id]);
    assert_eq!(out["revoked"], acme.client_id.as_str());

    // The running server learns about a revocation made by another process within its reload
    // interval (one second).
    let refused = eventually(Duration::from_secs(5), || async {
        let (status, body, _) = server.authorize_json(client_credentials(&acme)).await;
        status == 401 && body["error"] == "invalid_client"
    })
    .await;
    assert!(refused, "the revoked client still obtains tokens");
    let (status, body, _) = server.authorize_json(client_credentials(&acme)).await;
    assert_json_error(status, &body, 401, "invalid_client", "revoked");
    let mut refresh = client_credentials(&acme);
    refresh["grant_type"] = json!("refresh_token");
    refresh["refresh_token"] = issued["refresh_token"].clone();
    let (status, _, _) = server.authorize_json(refresh).await;
    assert_eq!(status, 401);

    let revoked = eventually(Duration::from_secs(5), || async {
        let (status, body) = server.get("/accounts/me", &value).await;
        status == 401
            && body["message"]
                .as_str()
                .unwrap_or("")
                .contains("revoked client")
    })
    .await;
    assert!(revoked, "the revoked client's token kept working");

    // The account's other client still works.
    let spare = common::Credentials {
        account: "acme".into(),
        client_id: spare["client_id"].as_str().unwrap().into(),
        client_secret: spare["client_secret"].as_str().unwrap().into(),
    };
    let (status, _) = server
        .get("/accounts/me", &server.bearer(&spare).await)
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn key_rotation_keeps_old_tokens_and_restart_keeps_everything() {
    let server = Server::start(&[]);
    let acme = server.create_account("acme", &[]);
    let before = server.token(&acme).await;
    let key_before = before
        .split("KeyId=")
        .nth(1)
        .unwrap()
        .split('&')
        .next()
        .unwrap()
        .to_string();

    let rotated = server.admin(&["keys", "rotate"]);
    let new_key = rotated["current_key"].as_str().unwrap().to_string();
    assert_ne!(new_key, key_before);
    let picked_up = eventually(Duration::from_secs(5), || async {
        server
            .token(&acme)
            .await
            .contains(&format!("KeyId={new_key}&"))
    })
    .await;
    assert!(picked_up, "new tokens are not signed with the rotated key");
    assert_eq!(server.get("/accounts/me", &bearer(&before)).await.0, 200);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(server.data_dir.join("signing-keys.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let after = server.token(&acme).await;
    let server = server.restart_after_kill();
    for token in [&before, &after] {
        let (status, me) = server.get("/accounts/me", &bearer(token)).await;
        assert_eq!(status, 200, "{me}");
    }
    assert!(server.token(&acme).await.contains("KeyId="));
    let accounts = server.admin(&["account", "list"]);
    assert_eq!(accounts[0]["name"], "acme");
}

#[tokio::test]
async fn token_requests_are_rate_limited_per_address() {
    let server = Server::start(&["--authorize-rate", "1", "--authorize-burst", "2"]);
    let acme = server.create_account("acme", &[]);
    let mut statuses = Vec::new();
    let mut last = (0, Value::Null, reqwest::header::HeaderMap::new());
    for _ in 0..4 {
        last = server.authorize_json(client_credentials(&acme)).await;
        statuses.push(last.0);
    }
    assert_eq!(&statuses[..2], &[200, 200]);
    assert_eq!(statuses[3], 429);
    assert_json_error(last.0, &last.1, 429, "too_many_requests", "retry in");
    let retry: u64 = last.2["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&retry), "Retry-After {retry}");
}

#[tokio::test]
async fn token_requests_are_rate_limited_per_client() {
    let server = Server::start(&[
        "--client-authorize-rate",
        "1",
        "--client-authorize-burst",
        "1",
    ]);
    let acme = server.create_account("acme", &[]);
    let other = server.create_account("other", &[]);
    assert_eq!(
        server.authorize_json(client_credentials(&acme)).await.0,
        200
    );
    let (status, body, _) = server.authorize_json(client_credentials(&acme)).await;
    assert_json_error(status, &body, 429, "too_many_requests", "retry in");
    // Another client from the same address is not affected.
    assert_eq!(
        server.authorize_json(client_credentials(&other)).await.0,
        200
    );
}

#[tokio::test]
async fn system_routes_and_json_for_everything() {
    let server = Server::start(&[]);
    let (status, health) = server.get("/health", "").await;
    assert_eq!(status, 200);
    assert_eq!(health["status"], "ok");

    let (status, openapi) = server.get("/openapi.json", "").await;
    assert_eq!(status, 200);
    for path in [
        "/authorize",
        "/accounts/me",
        "/health",
        "/metrics",
        "/openapi.json",
    ] {
        assert!(openapi["paths"][path].is_object(), "OpenAPI lacks {path}");
    }

    let (status, body) = server.get("/no/such/route", "").await;
    assert_json_error(status, &body, 404, "not_found", "no such route");
    let response = server
        .http
        .delete(server.url("/authorize"))
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let body: Value = response.json().await.unwrap();
    assert_json_error(status, &body, 405, "method_not_allowed", "does not accept");

    let metrics = server
        .http
        .get(server.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(metrics.contains("http_requests_total"), "{metrics}");
    assert!(
        !metrics.contains("route=\"/no/such/route\""),
        "raw paths must not become labels"
    );
    assert!(
        metrics.contains("http_request_duration_seconds"),
        "{metrics}"
    );
}

#[tokio::test]
async fn sigterm_shuts_down_gracefully() {
    let server = Server::start(&[]);
    assert_eq!(server.get("/health", "").await.0, 200);
    assert!(
        server.terminate(),
        "mh serve did not exit cleanly on SIGTERM"
    );
}

#[test]
fn admin_cli_validates_and_reports_errors() {
    let dir = tempfile::tempdir().unwrap();
    let created = admin(dir.path(), &["account", "create", "acme"]);
    assert_eq!(created["account"], "acme");
    assert_eq!(created["client_secret"].as_str().unwrap().len(), 43);
    // The data directory and its local environment exist after the first command.
    assert!(dir.path().join("metadata.db").exists());

    for (args, message) in [
        (vec!["account", "create", "acme"], "already exists"),
        (vec!["account", "create", "Bad_Name"], "3 to 64 characters"),
        (vec!["client", "create", "nobody"], "no account named"),
        (vec!["client", "revoke", "not-a-uuid"], "is not a client id"),
    ] {
        let output = mh()
            .arg("admin")
            .args(&args)
            .arg("--data-dir")
            .arg(dir.path())
            .output()
            .unwrap();
        assert!(!output.status.success(), "{args:?} succeeded");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(stderr.contains(message), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty());
    }
}

#[test]
fn serve_reports_a_bad_configuration_file() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("mh.toml");
    std::fs::write(&config, "listen = \"127.0.0.1:0\"\nunknown_setting = 1\n").unwrap();
    let output = mh()
        .args(["serve", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unknown field `unknown_setting`"),
        "{stderr}"
    );
}
