//! The `refresh` example end to end: each provider's sandbox on 127.0.0.1, a config file, the
//! command line, the JSON line and the exit code.
//!
//! The example's own code is compiled in as a module and driven through `run` (what `main`
//! calls); when `cargo test` has also built the example binary, one case runs the binary
//! itself as a process.

#[allow(dead_code)]
#[path = "../refresh.rs"]
mod refresh;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::{Value, json};
use token_core::codec::Endpoint;
use token_core::expiry::parse_rfc3339;
use token_core::issuer::IssuerConfig;
use token_core::oauth::TOKEN_PATH;
use token_core::sandbox::{Failure, RunningSandbox, Sandbox};
use token_core::{clock::SystemClock, secret::ClientSecret, token_set::TokenSet};
use token_provider_alipayplus::ApplyToken;
use token_provider_alipayplus::sandbox::AlipayPlusSandbox;
use token_provider_maya::MiniAppRefresh;
use token_provider_maya::sandbox::MayaSandbox;
use token_provider_paymentsgate::PaymentsgateConfig;

struct Case {
    dir: tempfile::TempDir,
}

impl Case {
    fn new() -> Self {
        Self {
            dir: tempfile::tempdir().unwrap(),
        }
    }

    fn config(&self, json: Value) -> PathBuf {
        let path = self.dir.path().join("config.json");
        std::fs::write(&path, json.to_string()).unwrap();
        path
    }
}

/// The command line for `provider` on `sandbox` (for `oauth2`, `--base-url` is the token URL).
fn args(
    provider: &str,
    sandbox: &RunningSandbox,
    config: &Path,
    refresh_token: &str,
) -> Vec<String> {
    let base_url = match provider {
        "oauth2" => sandbox.url(TOKEN_PATH),
        _ => sandbox.base_url(),
    };
    [
        "--provider",
        provider,
        "--base-url",
        base_url.as_str(),
        "--config",
        config.to_str().unwrap(),
        "--refresh-token",
        refresh_token,
    ]
    .map(str::to_owned)
    .to_vec()
}

async fn run(args: Vec<String>) -> (u8, Value) {
    let outcome = refresh::run(args).await;
    assert!(outcome.stderr.is_none(), "{outcome:?}");
    let line = outcome.stdout.expect("a JSON line");
    assert!(!line.contains('\n'), "one line: {line}");
    (outcome.code, serde_json::from_str(&line).unwrap())
}

fn refresh_token_of(set: &token_core::token_set::StoredTokenSet) -> String {
    set.refresh_token
        .as_ref()
        .unwrap()
        .expose_secret()
        .to_owned()
}

#[tokio::test]
async fn oauth2_refreshes_hides_the_tokens_and_reports_a_dead_refresh_token() {
    let sandbox =
        token_provider_oauth2::sandbox::start(Arc::new(SystemClock), IssuerConfig::default())
            .await
            .unwrap();
    let first = sandbox.issue("user-1").await.unwrap();
    let case = Case::new();
    let config =
        case.config(json!({"client_id": "app-1", "client_secret": "s3cret", "scope": "payments"}));
    let rt = refresh_token_of(&first);

    let (code, line) = run(args("oauth2", &sandbox, &config, &rt)).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["ok"], true);
    assert_eq!(line["access_token"], "***");
    assert_eq!(line["refresh_token"], "***");
    assert!(parse_rfc3339(line["access_expires_at"].as_str().unwrap()).is_ok());
    assert!(parse_rfc3339(line["refresh_expires_at"].as_str().unwrap()).is_ok());
    assert_eq!(line["extras"], json!({}));
    assert!(!line.to_string().contains(&rt));
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);

    // The refresh token was rotated away: the same command now needs re-authorization.
    let (code, line) = run(args("oauth2", &sandbox, &config, &rt)).await;
    assert_eq!(code, 2);
    assert_eq!(
        line,
        json!({"ok": false, "kind": "reauth_required", "code": "invalid_grant", "message": line["message"]})
    );
    assert!(!line["message"].as_str().unwrap().contains(&rt));
}

#[tokio::test]
async fn reveal_prints_the_tokens_the_provider_issued() {
    let sandbox =
        token_provider_oauth2::sandbox::start(Arc::new(SystemClock), IssuerConfig::default())
            .await
            .unwrap();
    let first = sandbox.issue("user-1").await.unwrap();
    let case = Case::new();
    let config =
        case.config(json!({"client_id": "app-1", "client_auth": "body", "client_secret": "s"}));
    let mut args = args("oauth2", &sandbox, &config, &refresh_token_of(&first));
    args.push("--reveal".into());
    let (code, line) = run(args).await;
    assert_eq!(code, 0, "{line}");
    let access = line["access_token"].as_str().unwrap();
    assert!(sandbox.issuer().authenticate(access).await.is_ok());
    let refresh = line["refresh_token"].as_str().unwrap();
    assert!(
        sandbox.issuer().refresh(refresh).await.is_ok(),
        "the printed refresh token is live"
    );
}

#[tokio::test]
async fn paymentsgate_refreshes_with_the_bearer_and_reissues_for_a_dead_refresh_token() {
    let account = PaymentsgateConfig::new("acct-1", "cHVibGljLWtleQ==");
    let sandbox = token_provider_paymentsgate::sandbox::start(
        Arc::new(SystemClock),
        token_provider_paymentsgate::sandbox::issuer_config(),
        &account,
    )
    .await
    .unwrap();
    let first = sandbox.issue("acct-1").await.unwrap();
    let case = Case::new();
    let config = case.config(json!({"account_id": "acct-1", "public_key": "cHVibGljLWtleQ=="}));
    let mut with_access = args("paymentsgate", &sandbox, &config, &refresh_token_of(&first));
    with_access.extend([
        "--access-token".into(),
        first.access_token.expose_secret().to_owned(),
    ]);
    let (code, line) = run(with_access).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["access_token"], "***");
    assert!(parse_rfc3339(line["access_expires_at"].as_str().unwrap()).is_ok());
    assert_eq!(
        line["refresh_expires_at"],
        Value::Null,
        "Paymentsgate does not say"
    );
    assert_eq!(sandbox.calls(token_provider_paymentsgate::REFRESH_PATH), 1);

    // A dead refresh token: the account credentials issue a new pair (a service account
    // needs no user).
    let (code, line) = run(args("paymentsgate", &sandbox, &config, "rt_dead")).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(sandbox.calls(token_provider_paymentsgate::ISSUE_PATH), 1);
}

#[tokio::test]
async fn vaultist_v3_and_v2_refresh_and_v2_reports_its_extras() {
    let sandbox = token_provider_vaultist::sandbox::start(
        Arc::new(SystemClock),
        token_provider_vaultist::sandbox::issuer_config(),
        &token_provider_vaultist::VaultistConfig::new(42),
    )
    .await
    .unwrap();
    let case = Case::new();
    let config = case.config(json!({"partner_id": 42}));
    let first = sandbox.issue("partner").await.unwrap();
    let (code, line) = run(args(
        "vaultist",
        &sandbox,
        &config,
        &refresh_token_of(&first),
    ))
    .await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["extras"], json!({}));

    let first = sandbox
        .issue_with("partner", json!({"user_id": "usr:1"}))
        .await
        .unwrap();
    let (code, line) = run(args(
        "vaultist-v2",
        &sandbox,
        &config,
        &refresh_token_of(&first),
    ))
    .await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["extras"], json!({"user_id": "usr:1"}));
    assert_eq!(sandbox.calls(token_provider_vaultist::REFRESH_PATH), 2);

    let (code, line) = run(args("vaultist-v2", &sandbox, &config, "rt_unknown")).await;
    assert_eq!(code, 2);
    assert_eq!(
        (line["kind"].as_str(), line["code"].as_str()),
        (Some("reauth_required"), Some("UNAUTHORIZED"))
    );
}

#[tokio::test]
async fn wechat_refreshes_keeps_the_refresh_token_and_reports_its_errcode() {
    let config = token_provider_wechat::WeChatConfig::new("wx520c15f417810387");
    let sandbox = token_provider_wechat::sandbox::start(
        Arc::new(SystemClock),
        token_provider_wechat::sandbox::issuer_config(),
        &config,
    )
    .await
    .unwrap();
    let case = Case::new();
    let file = case.config(json!({"appid": "wx520c15f417810387"}));
    let first = sandbox
        .issue_with("user", json!({"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"}))
        .await
        .unwrap();
    let rt = refresh_token_of(&first);
    let mut reveal = args("wechat", &sandbox, &file, &rt);
    reveal.push("--reveal".into());
    let (code, line) = run(reveal).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(
        line["refresh_token"],
        rt.as_str(),
        "WeChat keeps the refresh token"
    );
    assert_eq!(
        line["extras"],
        json!({"openid": "o6_bmjrPTlm6_2sgVt7hMZOPfL2M"})
    );

    let (code, line) = run(args("wechat", &sandbox, &file, "rt_unknown")).await;
    assert_eq!(code, 2);
    assert_eq!(
        (line["kind"].as_str(), line["code"].as_str()),
        (Some("reauth_required"), Some("40030"))
    );
    let wrong = case.config(json!({"appid": "wx0000000000000000"}));
    let (code, line) = run(args("wechat", &sandbox, &wrong, &rt)).await;
    assert_eq!(code, 2);
    assert_eq!(
        (line["kind"].as_str(), line["code"].as_str()),
        (Some("misconfigured"), Some("40013"))
    );
}

#[tokio::test]
async fn maya_gets_an_app_token_refreshes_at_the_mini_app_and_reports_a_dead_refresh_token() {
    let maya = MayaSandbox::new("partner-1", ClientSecret::new("partner-secret"));
    let sandbox = maya.routes(Sandbox::builder()).start().await.unwrap();
    let first = sandbox.issue("customer-1").await.unwrap();
    let case = Case::new();
    let config = case.config(json!({
        "client_id": "partner-1",
        "client_secret": "partner-secret",
        "connect_url": sandbox.base_url(),
        "refresh_token_lifetime_secs": 2_592_000,
    }));
    let rt = refresh_token_of(&first);

    let (code, line) = run(args("maya", &sandbox, &config, &rt)).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["ok"], true);
    assert_eq!(line["access_token"], "***");
    assert_eq!(line["refresh_token"], "***");
    assert!(parse_rfc3339(line["access_expires_at"].as_str().unwrap()).is_ok());
    // Maya does not send it: the configured lifetime stamps it.
    assert!(parse_rfc3339(line["refresh_expires_at"].as_str().unwrap()).is_ok());
    assert_eq!(line["extras"], json!({}));
    assert!(!line.to_string().contains(&rt));
    // The app token from Maya Connect (`--base-url` is the Mini App host, the config's
    // `connect_url` Maya Connect), then the customer refresh at `/tokens`.
    assert_eq!(sandbox.calls(TOKEN_PATH), 1);
    assert_eq!(sandbox.calls(MiniAppRefresh::PATH), 1);

    // The refresh token was rotated away: the customer must log in again.
    let (code, line) = run(args("maya", &sandbox, &config, &rt)).await;
    assert_eq!(code, 2, "{line}");
    assert_eq!(
        line,
        json!({"ok": false, "kind": "reauth_required", "code": "invalid_grant", "message": line["message"]})
    );
    assert!(!line["message"].as_str().unwrap().contains(&rt));

    // A wrong client secret is the partner's misconfiguration, not the customer's.
    let config = case.config(json!({
        "client_id": "partner-1",
        "client_secret": "not-the-secret",
        "connect_url": sandbox.base_url(),
    }));
    let live = refresh_token_of(&sandbox.issue("customer-2").await.unwrap());
    let (code, line) = run(args("maya", &sandbox, &config, &live)).await;
    assert_eq!(code, 2, "{line}");
    assert_eq!(
        (line["kind"].as_str(), line["code"].as_str()),
        (Some("misconfigured"), Some("invalid_client"))
    );
    assert!(!line["message"].as_str().unwrap().contains("not-the-secret"));
}

fn alipayplus_config(case: &Case, server_public_key: &str) -> PathBuf {
    use token_provider_alipayplus::sandbox::{ACQUIRER_ID, CLIENT_ID, PSP_ID, client_private_key};
    case.config(json!({
        "client_id": CLIENT_ID,
        "psp_id": PSP_ID,
        "acquirer_id": ACQUIRER_ID,
        "private_key": client_private_key(),
        "server_public_key": server_public_key,
    }))
}

#[tokio::test]
async fn alipayplus_refreshes_signed_reports_its_extras_and_a_dead_refresh_token() {
    use token_provider_alipayplus::sandbox::{client_public_key, mpp_public_key};
    let mpp = AlipayPlusSandbox::new();
    let sandbox = mpp
        .routes(Sandbox::builder().issuer_config(AlipayPlusSandbox::issuer_config()))
        .start()
        .await
        .unwrap();
    let first = sandbox
        .issue_with(
            "user-1",
            json!({"customerId": "2088000000000001", "userLoginId": "62-***2736"}),
        )
        .await
        .unwrap();
    let case = Case::new();
    let config = alipayplus_config(&case, mpp_public_key());
    let rt = refresh_token_of(&first);

    let (code, line) = run(args("alipayplus", &sandbox, &config, &rt)).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["ok"], true);
    assert_eq!(line["access_token"], "***");
    assert_eq!(line["refresh_token"], "***");
    assert!(parse_rfc3339(line["access_expires_at"].as_str().unwrap()).is_ok());
    assert!(parse_rfc3339(line["refresh_expires_at"].as_str().unwrap()).is_ok());
    assert_eq!(
        line["extras"],
        json!({"customerId": "2088000000000001", "userLoginId": "62-***2736"})
    );
    assert!(!line.to_string().contains(&rt));
    assert_eq!(sandbox.calls(ApplyToken::PATH), 1);

    // A refresh token the MPP does not know: re-authorization.
    let (code, line) = run(args("alipayplus", &sandbox, &config, "rt_unknown")).await;
    assert_eq!(code, 2, "{line}");
    assert_eq!(
        line,
        json!({"ok": false, "kind": "reauth_required", "code": "INVALID_REFRESH_TOKEN", "message": line["message"]})
    );

    // The wrong server key: the signed answer cannot be verified.
    let config = alipayplus_config(&case, client_public_key());
    let (code, line) = run(args("alipayplus", &sandbox, &config, &rt)).await;
    assert_eq!(code, 2, "{line}");
    assert_eq!(line["kind"], "misconfigured");
}

#[tokio::test]
async fn a_provider_that_keeps_failing_is_reported_transient() {
    let sandbox =
        token_provider_oauth2::sandbox::start(Arc::new(SystemClock), IssuerConfig::default())
            .await
            .unwrap();
    let first = sandbox.issue("user-1").await.unwrap();
    sandbox.fail_next(TOKEN_PATH, 10, Failure::service_unavailable());
    let case = Case::new();
    let config = case.config(json!({"client_id": "app-1"}));
    let (code, line) = run(args("oauth2", &sandbox, &config, &refresh_token_of(&first))).await;
    assert_eq!(code, 2);
    assert_eq!(line["kind"], "transient");
    assert_eq!(line["code"], "temporarily_unavailable");
    assert!(sandbox.calls(TOKEN_PATH) > 1, "retried");
}

#[tokio::test]
async fn a_config_that_does_not_fit_is_misconfigured() {
    let sandbox = token_provider_vaultist::sandbox::start(
        Arc::new(SystemClock),
        token_provider_vaultist::sandbox::issuer_config(),
        &token_provider_vaultist::VaultistConfig::new(42),
    )
    .await
    .unwrap();
    let case = Case::new();
    let config = case.config(json!({"partner": 42}));
    let (code, line) = run(args("vaultist", &sandbox, &config, "rt")).await;
    assert_eq!(code, 2);
    assert_eq!(line["kind"], "misconfigured");
    assert_eq!(line["code"], Value::Null);
    let missing = case.dir.path().join("absent.json");
    let (code, line) = run(args("vaultist", &sandbox, &missing, "rt")).await;
    assert_eq!((code, line["kind"].as_str()), (2, Some("misconfigured")));
    assert_eq!(sandbox.total_calls(), 0);
}

#[tokio::test]
async fn bad_arguments_exit_64_with_the_usage() {
    let usage = |args: &[&str]| {
        let args = args.iter().map(|a| a.to_string()).collect();
        async move { refresh::run(args).await }
    };
    for bad in [
        &[][..],
        &["--provider", "oauth2"],
        &[
            "--provider",
            "oauth2",
            "--base-url",
            "not a url",
            "--config",
            "c.json",
            "--refresh-token",
            "t",
        ],
        &[
            "--provider",
            "maya-classic",
            "--base-url",
            "http://127.0.0.1:9",
            "--config",
            "c.json",
            "--refresh-token",
            "t",
        ],
        &["--provider", "oauth2", "--provider", "oauth2"],
        &["--refresh-token"],
        &["--verbose"],
    ] {
        let outcome = usage(bad).await;
        assert_eq!(outcome.code, 64, "{bad:?}");
        assert!(outcome.stdout.is_none());
        assert!(outcome.stderr.unwrap().contains(refresh::USAGE), "{bad:?}");
    }
}

#[tokio::test]
async fn help_prints_the_usage_and_the_options_on_stdout_and_exits_0() {
    for help in [
        &["--help"][..],
        &["-h"],
        &["--provider", "oauth2", "--help"],
    ] {
        let outcome = refresh::run(help.iter().map(|a| a.to_string()).collect()).await;
        assert_eq!(outcome.code, 0, "{help:?}");
        assert!(outcome.stderr.is_none());
        let text = outcome.stdout.unwrap();
        assert!(text.starts_with(refresh::USAGE), "{text}");
        for option in [
            "--base-url",
            "--config",
            "--refresh-token",
            "--reveal",
            "--help",
        ] {
            assert!(text.contains(option), "{option} in {text}");
        }
    }
}

/// The example binary, when `cargo test` built it beside this test.
fn example_binary() -> Option<PathBuf> {
    let deps = std::env::current_exe().ok()?.parent()?.to_path_buf();
    let binary = deps
        .parent()?
        .join("examples")
        .join(format!("refresh{}", std::env::consts::EXE_SUFFIX));
    binary.is_file().then_some(binary)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_binary_prints_one_line_and_exits_with_its_code() {
    let Some(binary) = example_binary() else {
        eprintln!("the refresh example binary is not built; run `cargo test -p examples`");
        return;
    };
    let sandbox = token_provider_vaultist::sandbox::start(
        Arc::new(SystemClock),
        token_provider_vaultist::sandbox::issuer_config(),
        &token_provider_vaultist::VaultistConfig::new(42),
    )
    .await
    .unwrap();
    let first = TokenSet::<token_provider_vaultist::VaultistExtras>::from_stored(
        sandbox.issue("partner").await.unwrap(),
    )
    .unwrap();
    let case = Case::new();
    let config = case.config(json!({"partner_id": 42}));
    let run = |args: Vec<String>| {
        let binary = binary.clone();
        tokio::task::spawn_blocking(move || {
            std::process::Command::new(binary)
                .args(args)
                .output()
                .unwrap()
        })
    };
    let rt = first.refresh_token.unwrap().expose_secret().to_owned();
    let output = run(args("vaultist", &sandbox, &config, &rt)).await.unwrap();
    assert_eq!(output.status.code(), Some(0), "{output:?}");
    let stdout = String::from_utf8(output.stdout).unwrap();
    assert_eq!(stdout.lines().count(), 1);
    let line: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(
        (line["ok"].as_bool(), line["access_token"].as_str()),
        (Some(true), Some("***"))
    );

    let output = run(args("vaultist", &sandbox, &config, &rt)).await.unwrap();
    assert_eq!(output.status.code(), Some(2));
    let output = run(vec!["--provider".into()]).await.unwrap();
    assert_eq!(output.status.code(), Some(64));
    assert!(String::from_utf8_lossy(&output.stderr).contains("usage: refresh"));
    let output = run(vec!["--help".into()]).await.unwrap();
    assert_eq!(output.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&output.stdout).starts_with("usage: refresh"));
    assert!(output.stderr.is_empty());
}

#[tokio::test]
async fn lazada_refreshes_signed_and_a_wrong_secret_is_a_misconfiguration() {
    let app = token_provider_lazada::LazadaConfig::new("123456", "helloworld");
    let sandbox = token_provider_lazada::sandbox::start(
        Arc::new(SystemClock),
        token_provider_lazada::sandbox::issuer_config(),
        &app,
    )
    .await
    .unwrap();
    let case = Case::new();
    let first = sandbox.issue("seller").await.unwrap();
    let config = case.config(json!({"app_key": "123456", "app_secret": "helloworld"}));
    let (code, line) = run(args("lazada", &sandbox, &config, &refresh_token_of(&first))).await;
    assert_eq!(code, 0, "{line}");
    assert_eq!(line["refresh_token"], "***");
    assert_eq!(
        sandbox.calls(token_provider_lazada::RefreshAccessToken::PATH),
        1
    );

    let wrong = case.config(json!({"app_key": "123456", "app_secret": "not-the-secret"}));
    let second = sandbox.issue("seller").await.unwrap();
    let (code, line) = run(args("lazada", &sandbox, &wrong, &refresh_token_of(&second))).await;
    assert_eq!(code, 2);
    assert_eq!(
        (line["kind"].as_str(), line["code"].as_str()),
        (Some("misconfigured"), Some("IncompleteSignature"))
    );
    assert!(!line.to_string().contains("not-the-secret"), "{line}");
}

/// The URL with credentials the `Debug` tests configure, shared with the provider crates.
#[path = "../../test-support/src/url_credentials.rs"]
mod url_credentials;

/// The parsed command line's `Debug` shows neither the base URL's password and query nor
/// the tokens given on it.
#[test]
fn the_arguments_debug_shows_no_credential() {
    let args = refresh::Args {
        provider: "oauth2".into(),
        base_url: url_credentials::url_with_credentials(),
        config: "config.json".into(),
        refresh_token: "rt-given-on-the-command-line".into(),
        access_token: Some("at-given-on-the-command-line".into()),
        reveal: false,
    };
    let shown = format!("{args:?}");
    url_credentials::assert_shows_no_url_credential(&shown);
    assert!(!shown.contains("given-on-the-command-line"), "{shown}");
}
