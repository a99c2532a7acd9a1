//! Every provider the fault matrix, the soak, the property tests and the security tests cover,
//! as a [`Subject`]: its refresh call's path and sample answer, and how to start its sandbox
//! and a manager over it in an [`Env`]. The harness itself is `token_test_support::rig`.
#![allow(dead_code)]

use async_trait::async_trait;
use serde_json::{Value, json};
use token_core::codec::Endpoint;
use token_core::issuer::IssuerConfig;
use token_core::sandbox::Failure;
use token_test_support::rig::{Env, Rig, Subject, builder, rig};

pub use token_test_support::rig::CoreOAuth;

/// `token-provider-oauth2` (generic RFC 6749), a confidential client with HTTP Basic.
pub struct OAuth2;

#[async_trait]
impl Subject for OAuth2 {
    fn name(&self) -> &'static str {
        "oauth2"
    }

    fn refresh_path(&self) -> &'static str {
        token_core::oauth::TOKEN_PATH
    }

    fn success_sample(&self) -> Value {
        CoreOAuth.success_sample()
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let sandbox = token_provider_oauth2::sandbox::routes(
            builder(env, IssuerConfig::default()).oauth_routes(false),
        )
        .start()
        .await
        .expect("the sandbox starts");
        let token_url = env
            .base_url(&sandbox)
            .join(token_core::oauth::TOKEN_PATH.trim_start_matches('/'))
            .expect("a token URL");
        let config = token_provider_oauth2::OAuth2Config::new("app-1", token_url)
            .with_client_secret("s3cret-client".into())
            .with_reuse_window(env.reuse);
        let provider = token_provider_oauth2::OAuth2::new(config);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-maya`: the Mini App `/tokens` refresh, with the app token from Maya
/// Connect (always at the sandbox; only the refresh call is pointed elsewhere).
pub struct Maya;

#[async_trait]
impl Subject for Maya {
    fn renews_on_401(&self) -> bool {
        true
    }

    fn name(&self) -> &'static str {
        "maya"
    }

    fn refresh_path(&self) -> &'static str {
        "/tokens"
    }

    fn success_sample(&self) -> Value {
        json!({
            "accessToken": "eyJhbGciOiJIUzI1NiJ9.e30.mini-app-access",
            "refreshToken": "eyJhbGciOiJIUzI1NiJ9.e30.mini-app-refresh",
            "expiresAt": 1_767_229_200,
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/accessToken"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expiresAt"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let secret = token_core::secret::ClientSecret::new("partner-s3cret");
        let maya = token_provider_maya::sandbox::MayaSandbox::new("partner-1", secret.clone());
        let sandbox = maya
            .routes(builder(env, IssuerConfig::default()))
            .start()
            .await
            .expect("the sandbox starts");
        let config = token_provider_maya::MayaConfig::new("partner-1", secret, sandbox.base_url())
            .with_api_url(env.base_url(&sandbox))
            .with_reuse_window(env.reuse);
        let provider =
            token_provider_maya::Maya::from_config(config, env.client(&sandbox), env.clock.clock())
                .expect("the provider builds");
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-alipayplus`: applyToken with `REFRESH_TOKEN`, RSA256 both ways.
pub struct AlipayPlus;

const APPLY_TOKEN: &str = "/aps/api/v1/authorizations/applyToken";

#[async_trait]
impl Subject for AlipayPlus {
    fn name(&self) -> &'static str {
        "alipayplus"
    }

    fn refresh_path(&self) -> &'static str {
        APPLY_TOKEN
    }

    fn success_sample(&self) -> Value {
        json!({
            "result": {"resultCode": "SUCCESS", "resultMessage": "success", "resultStatus": "S"},
            "accessToken": "281010033AB2F588D14B43238637264FCA5AAF35",
            "accessTokenExpiryTime": "2022-06-06T12:12:12+08:00",
            "refreshToken": "2810100334F62CBC577F468AAC87CFC6C9107811",
            "refreshTokenExpiryTime": "2022-06-08T12:12:12+08:00",
            "customerId": "2789808900000000000000001",
            "userLoginId": "62-***2736",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/accessToken"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/accessTokenExpiryTime"
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let mpp = token_provider_alipayplus::sandbox::AlipayPlusSandbox::new();
        let sandbox = mpp
            .routes(builder(env, IssuerConfig::default()))
            .start()
            .await
            .expect("the sandbox starts");
        let mut config = mpp.config(&sandbox).with_base_url(env.base_url(&sandbox));
        config.reuse_window_secs = env.reuse.as_secs();
        let provider =
            token_provider_alipayplus::AlipayPlus::new(config).expect("the provider builds");
        let extras =
            json!({"customerId": "2789808900000000000000001", "userLoginId": "62-***2736"});
        rig(env, sandbox, provider, extras)
    }

    /// The MPP signs every 2xx answer; the client refuses an unsigned one as misconfigured.
    fn seal(&self, failure: Failure, now: time::OffsetDateTime) -> Failure {
        use token_provider_alipayplus::sandbox::{CLIENT_ID, client_public_key, mpp_private_key};
        let mut response = failure.to_response();
        if !response.status().is_success() {
            return failure;
        }
        let signer = token_provider_alipayplus::signature::Rsa256Signer::from_pem(
            CLIENT_ID,
            1,
            mpp_private_key(),
            client_public_key(),
        )
        .expect("the sandbox keys");
        let request = http::Request::post(APPLY_TOKEN)
            .body(Vec::<u8>::new())
            .expect("a request");
        signer
            .sign_response(&request, &mut response, now)
            .expect("signed");
        let mut sealed = Failure::new(response.status()).with_body(response.body().clone());
        for (name, value) in response.headers() {
            sealed = sealed.with_header(name.clone(), value.clone());
        }
        sealed
    }
}

/// `token-provider-paymentsgate`: a service account; a refused refresh issues anew.
pub struct Paymentsgate;

#[async_trait]
impl Subject for Paymentsgate {
    fn name(&self) -> &'static str {
        "paymentsgate"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_paymentsgate::REFRESH_PATH
    }

    fn success_sample(&self) -> Value {
        json!({
            "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.e30.c2lnbmF0dXJl",
            "refresh_token": "8xLOxBatCN8fDrMHtkX1uDgeHxWxhoJDl",
            "expires_in": 3600,
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    fn can_issue(&self) -> bool {
        true
    }

    fn on_status(&self) -> &'static [(u16, token_core::error::ErrorKind)] {
        <token_provider_paymentsgate::PaymentsgateError as token_core::codec::ErrorResponse>::ON_STATUS
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let account =
            token_provider_paymentsgate::PaymentsgateConfig::new("acct-1", "cHVibGljLWtleQ==");
        let sandbox = token_provider_paymentsgate::sandbox::routes(
            builder(env, token_provider_paymentsgate::sandbox::issuer_config()).oauth_routes(false),
            &account,
        )
        .start()
        .await
        .expect("the sandbox starts");
        let provider =
            token_provider_paymentsgate::Paymentsgate::new(env.base_url(&sandbox), account);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-vaultist`: the v3 refresh (`partnerId` and `grantType` headers).
pub struct Vaultist;

#[async_trait]
impl Subject for Vaultist {
    fn name(&self) -> &'static str {
        "vaultist"
    }

    fn refresh_path(&self) -> &'static str {
        token_provider_vaultist::REFRESH_PATH
    }

    fn success_sample(&self) -> Value {
        json!({
            "access_token": "eyJhbGciOiJIUzI1NiIsIn...",
            "refresh_token": "dGhpcyBpcyBhIHJlZnJlc2h...",
            "expires_in": 3600,
            "token_type": "Bearer",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let config = token_provider_vaultist::VaultistConfig::new(1001);
        let sandbox = token_provider_vaultist::sandbox::routes(
            builder(env, token_provider_vaultist::sandbox::issuer_config()).oauth_routes(false),
            &config,
        )
        .start()
        .await
        .expect("the sandbox starts");
        let provider = token_provider_vaultist::Vaultist::new(env.base_url(&sandbox), config);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-lazada`: the HMAC-SHA256 signed refresh, verified by its sandbox.
pub struct Lazada;

#[async_trait]
impl Subject for Lazada {
    fn name(&self) -> &'static str {
        "lazada"
    }

    fn refresh_path(&self) -> &'static str {
        <token_provider_lazada::RefreshAccessToken as Endpoint>::PATH
    }

    fn success_sample(&self) -> Value {
        // The refresh reference's sample, as JSON.
        json!({
            "code": "0",
            "expires_in": 10,
            "country": "sg",
            "account_platform": "seller_center",
            "access_token": "50000601c30atpedfgu3LVvik87Ixlsvle3mSoB7701ceb156fPunYZ43GBg",
            "account": "xxx@126.com",
            "refresh_expires_in": 60,
            "refresh_token": "500016000300bwa2WteaQyfwBMnPxurcA0mXGhQdTt18356663CfcDTYpWoi",
            "request_id": "0ba2887315178178017221014",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let app = token_provider_lazada::LazadaConfig::new("123456", "helloworld");
        // The matrix lets an access token of one hour expire (Lazada's last 30 days).
        let issuer = token_provider_lazada::sandbox::issuer_config()
            .with_access_ttl(std::time::Duration::from_secs(3600));
        let sandbox = builder(env, issuer)
            .oauth_routes(false)
            .serve::<token_provider_lazada::RefreshAccessToken>(&app)
            .start()
            .await
            .expect("the sandbox starts");
        let provider = token_provider_lazada::Lazada::new(env.base_url(&sandbox), app);
        rig(env, sandbox, provider, json!({}))
    }
}

/// `token-provider-wechat`: `GET /sns/oauth2/refresh_token`, `errcode` errors on HTTP 200,
/// the refresh token kept.
pub struct WeChat;

#[async_trait]
impl Subject for WeChat {
    fn name(&self) -> &'static str {
        "wechat"
    }

    fn refresh_path(&self) -> &'static str {
        <token_provider_wechat::SnsRefreshToken as Endpoint>::PATH
    }

    fn success_sample(&self) -> Value {
        // developers.weixin.qq.com, snsRefreshToken, "Return an example".
        json!({
            "access_token": "ACCESS_TOKEN",
            "expires_in": 7200,
            "refresh_token": "REFRESH_TOKEN",
            "openid": "OPENID",
            "scope": "SCOPE",
        })
    }

    fn access_pointer(&self) -> &'static str {
        "/access_token"
    }

    fn expiry_pointer(&self) -> &'static str {
        "/expires_in"
    }

    fn reuse_configurable(&self) -> bool {
        false
    }

    fn rotates(&self) -> bool {
        false
    }

    async fn start(&self, env: &Env) -> Box<dyn Rig> {
        let config = token_provider_wechat::WeChatConfig::new("wx520c15f417810387");
        // The matrix lets an hour pass; WeChat's access tokens last two.
        let issuer = token_provider_wechat::sandbox::issuer_config()
            .with_access_ttl(std::time::Duration::from_secs(3600));
        let sandbox = builder(env, issuer)
            .oauth_routes(false)
            .serve::<token_provider_wechat::SnsRefreshToken>(&config)
            .start()
            .await
            .expect("the sandbox starts");
        let provider = token_provider_wechat::WeChat::new(env.base_url(&sandbox), config);
        rig(env, sandbox, provider, json!({"openid": "OPENID"}))
    }
}

/// Every provider the matrix covers.
pub fn subjects() -> Vec<Box<dyn Subject>> {
    vec![
        Box::new(CoreOAuth),
        Box::new(OAuth2),
        Box::new(Maya),
        Box::new(AlipayPlus),
        Box::new(Paymentsgate),
        Box::new(Vaultist),
        Box::new(Lazada),
        Box::new(WeChat),
    ]
}
