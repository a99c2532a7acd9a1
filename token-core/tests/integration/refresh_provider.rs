//! `RefreshProvider` and `SandboxBuilder::serve` over one declared refresh endpoint: the
//! client refreshes with the declarations, the sandbox serves them, and each refusal the
//! sandbox derives from them (another client, no refresh token, a wrong signature) is
//! answered with the code the provider's error declares.

use std::sync::Arc;

use token_core::provider::{RefreshEndpoint, RefreshProvider};
use token_core::sandbox::{RunningSandbox, Sandbox};
use token_core::{
    clock::ManualClock, codec::Endpoint, error::EndpointError, error::Error, error::ErrorKind,
    provider::CallContext, provider::Provider, secret::AccessToken, secret::ClientSecret,
    secret::RefreshToken, token_endpoint, token_set::TokenSet,
};

#[derive(Clone, Debug, PartialEq)]
struct AcmeConfig {
    client_id: String,
    secret: ClientSecret,
}

fn config() -> AcmeConfig {
    AcmeConfig {
        client_id: "app-1".into(),
        secret: ClientSecret::new("s3cret"),
    }
}

#[token_endpoint(extras)]
#[derive(Clone, Debug, Default, PartialEq)]
struct Account {
    region: Option<String>,
    #[token(keep)]
    owner: Option<String>,
}

#[token_endpoint(response, extras = Account)]
struct Tokens {
    #[token(access_token)]
    access_token: AccessToken,
    #[token(refresh_token)]
    refresh_token: Option<RefreshToken>,
    #[token(extras)]
    account: Account,
}

#[token_endpoint(error_code)]
#[derive(Clone, Debug, PartialEq)]
enum Code {
    #[token(code = "BAD_TOKEN", kind = reauth_required, refusal = invalid_refresh_token)]
    BadToken,
    #[token(code = "NO_SUCH_APP", kind = misconfigured, refusal = unknown_client)]
    NoSuchApp,
    #[token(code = "BAD_SIGN", kind = misconfigured, refusal = bad_signature)]
    BadSign,
    #[token(code = "MISSING", kind = misconfigured, refusal = bad_request)]
    Missing,
    #[token(other)]
    Other(String),
}

#[token_endpoint(error, status = 400)]
struct Failure {
    #[token(code)]
    code: Code,
    #[token(message)]
    message: Option<String>,
}

/// The refresh token is optional on the wire, so the sandbox's own check of it is reached.
#[token_endpoint(post = "/token", form, response = Tokens, error = Failure, config = AcmeConfig,
                 provider = "acme", sign(hmac_sha256, over(path, sorted_params), into = query("sign")))]
struct Refresh {
    #[token(query, from = config.client_id)]
    client_id: String,
    #[token(from = refresh_token)]
    refresh_token: Option<RefreshToken>,
    #[token(signing_key, from = config.secret)]
    secret: ClientSecret,
}

type Acme = RefreshProvider<Refresh>;

async fn start(config: &AcmeConfig) -> RunningSandbox {
    Sandbox::builder()
        .clock(Arc::new(ManualClock::default()))
        .serve::<Refresh>(config)
        .start()
        .await
        .unwrap()
}

fn cx(sandbox: &RunningSandbox) -> CallContext {
    CallContext::new(sandbox.client(), sandbox.clock().clone(), "alice")
}

async fn first(sandbox: &RunningSandbox) -> TokenSet<Account> {
    let issued = sandbox
        .issue_with("alice", serde_json::json!({"region": "eu", "owner": "o-1"}))
        .await
        .unwrap();
    TokenSet::from_stored(issued).unwrap()
}

/// A request the sandbox decodes, sent as the client would (signed with `secret`).
async fn send(sandbox: &RunningSandbox, request: &Refresh) -> http::Response<Vec<u8>> {
    let mut encoded = request.encode_request(&sandbox.base_url()).unwrap();
    *encoded.uri_mut() = encoded
        .uri()
        .path_and_query()
        .unwrap()
        .as_str()
        .parse()
        .unwrap();
    sandbox.client().send(encoded).await.unwrap()
}

fn code_of(answer: &http::Response<Vec<u8>>) -> String {
    let body: serde_json::Value = serde_json::from_slice(answer.body()).unwrap();
    body["code"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn the_generic_provider_refreshes_and_keeps_declared_extras() {
    let sandbox = start(&config()).await;
    let first = first(&sandbox).await;
    let acme = Acme::new(sandbox.base_url(), config());
    assert_eq!(acme.name(), "acme");
    assert_eq!(acme.config(), &config());
    assert!(format!("{acme:?}").contains("acme") && !format!("{acme:?}").contains("s3cret"));

    let next = acme.refresh(&cx(&sandbox), &first).await.unwrap();
    assert_ne!(next.refresh_token, first.refresh_token, "rotated");
    assert_eq!(next.extras.region.as_deref(), Some("eu"));
    assert_eq!(next.extras.owner.as_deref(), Some("o-1"));

    // An answer without extras: `owner` (declared `keep`) is the session's, `region` is what
    // the answer says (nothing).
    let bare = sandbox.issue("bob").await.unwrap();
    let mut session = TokenSet::<Account>::from_stored(bare).unwrap();
    session.extras = Account {
        region: Some("asia".into()),
        owner: Some("o-2".into()),
    };
    let next = acme.refresh(&cx(&sandbox), &session).await.unwrap();
    assert_eq!(next.extras.owner.as_deref(), Some("o-2"));
    assert_eq!(next.extras.region, None);
    assert_eq!(sandbox.calls("/token"), 2);
}

#[tokio::test]
async fn the_generic_provider_errors_are_typed() {
    let sandbox = start(&config()).await;
    let acme = Acme::new(sandbox.base_url(), config());

    // No refresh token in the session: an encoding error, and no call.
    let bare = TokenSet::<Account>::new(AccessToken::new("at"));
    let error = acme.refresh(&cx(&sandbox), &bare).await.unwrap_err();
    assert!(
        matches!(&error, Error::Endpoint(EndpointError::Encode(_))),
        "{error:?}"
    );
    assert_eq!(sandbox.calls("/token"), 0);

    // A dead refresh token: the provider's code, classified as declared.
    let dead = bare.with_refresh_token(RefreshToken::new("rt_unknown"));
    let error = acme.refresh(&cx(&sandbox), &dead).await.unwrap_err();
    assert_eq!(error.kind(), ErrorKind::ReauthRequired);
    assert_eq!(error.provider_code(), Some("BAD_TOKEN"));
}

#[tokio::test]
async fn a_sandbox_for_another_config_refuses_as_unknown_client() {
    let sandbox = start(&config()).await;
    let first = first(&sandbox).await;
    let other = AcmeConfig {
        client_id: "app-2".into(),
        ..config()
    };
    let error = Acme::new(sandbox.base_url(), other)
        .refresh(&cx(&sandbox), &first)
        .await
        .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("NO_SUCH_APP"));
    assert!(error.to_string().contains("client_id"), "{error}");
    // The refresh token was not spent.
    let next = Acme::new(sandbox.base_url(), config())
        .refresh(&cx(&sandbox), &first)
        .await
        .unwrap();
    assert_ne!(next.refresh_token, first.refresh_token);
}

#[tokio::test]
async fn a_request_without_a_refresh_token_is_a_bad_request() {
    let sandbox = start(&config()).await;
    let request = Refresh {
        client_id: "app-1".into(),
        refresh_token: None,
        secret: config().secret,
    };
    let answer = send(&sandbox, &request).await;
    assert_eq!(answer.status(), 400);
    assert_eq!(code_of(&answer), "MISSING");
}

#[tokio::test]
async fn a_wrong_signature_is_refused_as_a_bad_signature() {
    let sandbox = start(&config()).await;
    let first = first(&sandbox).await;
    let forged = Refresh {
        client_id: "app-1".into(),
        refresh_token: first.refresh_token.clone(),
        secret: ClientSecret::new("not-the-secret"),
    };
    let answer = send(&sandbox, &forged).await;
    assert_eq!(code_of(&answer), "BAD_SIGN");
    assert!(!String::from_utf8_lossy(answer.body()).contains("s3cret"));

    let error = Acme::new(
        sandbox.base_url(),
        AcmeConfig {
            secret: ClientSecret::new("not-the-secret"),
            ..config()
        },
    )
    .refresh(&cx(&sandbox), &first)
    .await
    .unwrap_err();
    assert_eq!(error.kind(), ErrorKind::Misconfigured);
    assert_eq!(error.provider_code(), Some("BAD_SIGN"));
}

#[test]
fn the_declarations_read_back_on_the_server_side() {
    let request = Refresh {
        client_id: "app-1".into(),
        refresh_token: Some(RefreshToken::new("rt")),
        secret: config().secret,
    };
    assert_eq!(Refresh::PROVIDER, "acme");
    assert_eq!(request.refresh_token(), Some(RefreshToken::new("rt")));
    assert_eq!(request.config_mismatch(&config()), None);
    assert_eq!(
        Refresh::verify_key(&config()),
        Some(ClientSecret::new("s3cret"))
    );
}

/// The client id and the refresh token, declared once in a group the refresh flattens.
#[token_endpoint(fields, config = AcmeConfig)]
struct Grant {
    #[token(query, from = config.client_id)]
    client_id: String,
    #[token(from = refresh_token)]
    refresh_token: RefreshToken,
}

#[token_endpoint(post = "/grouped", form, response = Tokens, error = Failure, config = AcmeConfig,
                 provider = "acme-grouped")]
struct GroupedRefresh {
    #[token(flatten)]
    grant: Grant,
    #[token(header, rename = "X-Client-Secret", from = config.secret)]
    secret: ClientSecret,
}

#[test]
fn a_flattened_group_s_fields_are_read_back_on_the_server_side() {
    let request = GroupedRefresh {
        grant: Grant {
            client_id: "app-1".into(),
            refresh_token: RefreshToken::new("rt"),
        },
        secret: config().secret,
    };
    assert_eq!(request.refresh_token(), Some(RefreshToken::new("rt")));
    assert_eq!(request.config_mismatch(&config()), None);
    let other_app = AcmeConfig {
        client_id: "app-2".into(),
        ..config()
    };
    assert_eq!(request.config_mismatch(&other_app), Some("client_id"));
    let other_secret = AcmeConfig {
        secret: ClientSecret::new("other"),
        ..config()
    };
    assert_eq!(
        request.config_mismatch(&other_secret),
        Some("X-Client-Secret")
    );
    assert_eq!(GroupedRefresh::verify_key(&config()), None);
}

#[tokio::test]
async fn a_refresh_flattening_a_group_is_served_and_checked_against_the_config() {
    let sandbox = Sandbox::builder()
        .clock(Arc::new(ManualClock::default()))
        .oauth_routes(false)
        .serve::<GroupedRefresh>(&config())
        .start()
        .await
        .unwrap();
    let first = first(&sandbox).await;
    let grouped = RefreshProvider::<GroupedRefresh>::new(sandbox.base_url(), config());
    let next = grouped.refresh(&cx(&sandbox), &first).await.unwrap();
    assert_ne!(next.refresh_token, first.refresh_token, "rotated");

    // The group's `from = config.client_id` field is checked like the request's own.
    let other = AcmeConfig {
        client_id: "app-2".into(),
        ..config()
    };
    let error = RefreshProvider::<GroupedRefresh>::new(sandbox.base_url(), other)
        .refresh(&cx(&sandbox), &next)
        .await
        .unwrap_err();
    assert_eq!(error.provider_code(), Some("NO_SUCH_APP"));
    assert!(error.to_string().contains("client_id"), "{error}");
    assert_eq!(sandbox.calls("/grouped"), 2);
}

/// A sandbox serving a provider's endpoint is that provider's: no built-in RFC 6749
/// `/authorize` beside it, unless asked for.
#[tokio::test]
async fn serving_an_endpoint_leaves_out_the_built_in_oauth_routes_unless_asked() {
    let authorize = |sandbox: &RunningSandbox| {
        let mut request = http::Request::new(Vec::new());
        *request.uri_mut() = sandbox
            .url("/authorize?session=alice")
            .as_str()
            .parse()
            .unwrap();
        let client = sandbox.client();
        async move { client.send(request).await.unwrap().status() }
    };
    let provider_only = start(&config()).await;
    assert_eq!(authorize(&provider_only).await, http::StatusCode::NOT_FOUND);
    let both = Sandbox::builder()
        .serve::<Refresh>(&config())
        .oauth_routes(true)
        .start()
        .await
        .unwrap();
    assert_ne!(authorize(&both).await, http::StatusCode::NOT_FOUND);
    let plain = Sandbox::builder().start().await.unwrap();
    assert_ne!(authorize(&plain).await, http::StatusCode::NOT_FOUND);
}

/// The URL with credentials the `Debug` tests configure, shared with the provider crates.
#[path = "../../../test-support/src/url_credentials.rs"]
mod url_credentials;
use url_credentials::{assert_shows_no_url_credential, url_with_credentials};

/// A base URL's password and query (credentials an integrator may put there) are not shown
/// by the provider's `Debug`; its scheme, host and path are.
#[test]
fn the_provider_s_debug_shows_no_credential_of_its_base_url() {
    let provider = RefreshProvider::<Refresh>::new(url_with_credentials(), config());
    assert_shows_no_url_credential(&format!("{provider:?}"));
}

/// Nor by the sandbox's provider's, nor by a re-auth signal's (its authorize URL is made
/// from a configured one, query kept).
#[test]
fn no_debug_shows_a_credential_of_a_configured_url() {
    let provider = token_core::sandbox::SandboxOAuth::new(url_with_credentials());
    assert_shows_no_url_credential(&format!("{provider:?}"));
    let mut reauth = token_core::error::Reauth::new("alice", "refresh token expired");
    reauth.authorize_url = Some(format!("{}&state=alice", url_with_credentials()));
    assert_shows_no_url_credential(&format!("{:?}", Error::ReauthRequired(reauth)));
}
